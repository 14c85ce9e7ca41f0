import type { HubFile } from "./tree.js";

/** One model in a repository: a single GGUF file, or every shard of a split set, in order. */
export interface HubModelFiles {
  /** The quantization read from the file name (upper case), or null when the name says none. */
  quantization: string | null;
  files: HubFile[];
}

/**
 * The order quantizations are chosen in when a reference names none: Ollama's default (Q4_K_M) first, then the
 * nearest in size and quality, then larger, then smaller, then unquantized.
 */
export const quantizationPreference = [
  "Q4_K_M",
  "Q4_K_S",
  "Q4_K_L",
  "Q4_K_XL",
  "IQ4_XS",
  "IQ4_NL",
  "Q4_0",
  "Q4_1",
  "Q5_K_M",
  "Q5_K_S",
  "Q5_K_L",
  "Q5_K_XL",
  "Q5_0",
  "Q5_1",
  "Q6_K",
  "Q6_K_L",
  "Q6_K_XL",
  "Q8_0",
  "Q8_K_XL",
  "Q3_K_L",
  "Q3_K_M",
  "Q3_K_XL",
  "IQ3_M",
  "Q3_K_S",
  "IQ3_XS",
  "IQ3_XXS",
  "Q2_K_L",
  "Q2_K",
  "Q2_K_XL",
  "IQ2_M",
  "IQ2_S",
  "IQ2_XS",
  "IQ2_XXS",
  "IQ1_M",
  "IQ1_S",
  "BF16",
  "F16",
  "F32",
] as const;

const quantizationToken = /^(?:I?Q[1-8](?:_[A-Z0-9]+)*|B?F16|F32)$/i;
const shardPattern = /^(.+)-(\d{5})-of-(\d{5})\.gguf$/i;

/** The quantization a GGUF file's name (or its folder's) states, upper-cased; null when none does. */
export function quantizationOf(path: string): string | null {
  const segments = path.replace(/\.gguf$/i, "").split("/");
  for (const segment of segments.reverse()) {
    const tokens = segment.split(/[-.]/).filter((token) => quantizationToken.test(token));
    if (tokens.length > 0) return tokens.at(-1)!.toUpperCase();
  }
  return null;
}

/** Multimodal projectors and the like are not models to run on their own. */
function isAuxiliary(path: string): boolean {
  const name = path.split("/").at(-1)!.toLowerCase();
  return name.startsWith("mmproj") || name.includes("-mmproj") || name.startsWith("imatrix");
}

/** Groups a repository's GGUF files into models: split sets whole and in shard order, lone files by themselves. */
export function groupModels(files: HubFile[]): HubModelFiles[] {
  const singles: HubModelFiles[] = [];
  const sets = new Map<string, { count: number; shards: Map<number, HubFile> }>();
  for (const file of files) {
    if (!file.path.toLowerCase().endsWith(".gguf") || isAuxiliary(file.path)) continue;
    const match = shardPattern.exec(file.path);
    if (!match || Number(match[3]) <= 1) {
      singles.push({ quantization: quantizationOf(file.path), files: [file] });
      continue;
    }
    const key = `${match[1]}|${match[3]}`;
    const set = sets.get(key) ?? { count: Number(match[3]), shards: new Map<number, HubFile>() };
    set.shards.set(Number(match[2]), file);
    sets.set(key, set);
  }
  const grouped = [...singles];
  for (const set of sets.values()) {
    const shards = Array.from({ length: set.count }, (_, i) => set.shards.get(i + 1));
    // An incomplete set cannot be loaded; leave it out rather than pull half a model.
    if (shards.some((shard) => shard === undefined)) continue;
    grouped.push({ quantization: quantizationOf(shards[0]!.path), files: shards as HubFile[] });
  }
  return grouped.sort((a, b) => a.files[0]!.path.localeCompare(b.files[0]!.path));
}

/** The model to pull when the reference names no quantization; null when the repository has no GGUF model. */
export function chooseDefault(models: HubModelFiles[]): HubModelFiles | null {
  const rank = (model: HubModelFiles) => {
    const index = quantizationPreference.indexOf(model.quantization as (typeof quantizationPreference)[number]);
    return index === -1 ? quantizationPreference.length : index;
  };
  return [...models].sort((a, b) => rank(a) - rank(b))[0] ?? null;
}
