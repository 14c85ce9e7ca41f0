import { type HubModelFiles, quantizationOf } from "./quantization.js";
import type { HubFile } from "./tree.js";

/** The projector to fetch beside a model, and why that one (for `pull`'s output). */
export interface ProjectorChoice {
  file: HubFile;
  reason: string;
}

/** Precisions in the order a projector is chosen when none matches the model's (projectors are small; keep them exact). */
const fallbackPrecisions = ["F16", "BF16", "F32", "Q8_0"];

function folderOf(path: string): string {
  return path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : "";
}

/** A multimodal projector by llama.cpp's naming: `mmproj-*.gguf` (also `*-mmproj-*.gguf`, `mmproj.gguf`). */
export function isProjectorPath(path: string): boolean {
  const name = path.split("/").at(-1)!.toLowerCase();
  return name.endsWith(".gguf") && (name.startsWith("mmproj") || name.includes("-mmproj"));
}

/**
 * Which of a repository's projectors goes with `model`; null when it has none. The rule (docs/models.md): projectors
 * in the model's own folder first (repositories with a folder per quantization); among them the one whose precision
 * matches the model's (an F16 model gets mmproj-F16), else F16, BF16, F32, Q8_0 in that order, else the first by name.
 */
export function chooseProjector(listing: HubFile[], model: HubModelFiles): ProjectorChoice | null {
  const all = listing.filter((file) => isProjectorPath(file.path)).sort((a, b) => a.path.localeCompare(b.path));
  if (all.length === 0) return null;
  const folder = folderOf(model.files[0]!.path);
  const near = all.filter((file) => folderOf(file.path) === folder);
  const candidates = near.length > 0 ? near : all;
  const only = candidates.length === 1 && all.length === 1;
  if (only) return { file: candidates[0]!, reason: "the repository's only projector" };
  const precision = (file: HubFile) => quantizationOf(file.path.split("/").at(-1)!);
  const matching = model.quantization ? candidates.find((file) => precision(file) === model.quantization) : undefined;
  if (matching) return { file: matching, reason: `${model.quantization}, the model's own precision` };
  for (const wanted of fallbackPrecisions) {
    const file = candidates.find((candidate) => precision(candidate) === wanted);
    if (file) return { file, reason: `${wanted}, none matches the model's ${model.quantization ?? "precision"}` };
  }
  return { file: candidates[0]!, reason: "the first by name (none states a precision freehold prefers)" };
}
