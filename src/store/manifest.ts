import { z } from "zod";
import { StoreError } from "../core/errors.js";
import { flashAttentionModes, kvCacheTypes } from "../core/memorySettings.js";
import type { ModelProfile } from "../core/profile.js";
import type { ModelSummary } from "../gguf/index.js";
import { isDigest, parseDigest } from "./digest.js";
import { readTextIfExists } from "./durable.js";

const nullableNumber = z.number().nullable();

const summarySchema = z.object({
  architecture: z.string(),
  name: z.string().nullable(),
  parameters: z.number(),
  parameterSize: z.string(),
  fileType: z.string(),
  tensorTypes: z.record(z.string(), z.number()),
  contextLength: nullableNumber,
  embeddingLength: nullableNumber,
  blockCount: nullableNumber,
  feedForwardLength: nullableNumber,
  headCount: nullableNumber,
  headCountKv: nullableNumber,
  vocabularySize: nullableNumber,
  tokenizer: z.string().nullable(),
  hasChatTemplate: z.boolean(),
  chatTemplate: z.string().nullable(),
  specialTokens: z.record(z.string(), z.object({ id: z.number(), text: z.string().nullable() })),
  license: z.string().nullable(),
  size: z.number(),
  tensorCount: z.number(),
  splitCount: z.number(),
  synthetic: z.boolean(),
  attention: z
    .object({
      keyLength: nullableNumber,
      valueLength: nullableNumber,
      keyLengthSwa: nullableNumber,
      valueLengthSwa: nullableNumber,
      headCountKvPerLayer: z.array(z.number()).nullable(),
      slidingWindow: nullableNumber,
      slidingWindowPattern: z.union([z.number(), z.array(z.boolean())]).nullable(),
      sharedKvLayers: nullableNumber,
      mla: z.boolean(),
    })
    .optional(),
}) satisfies z.ZodType<ModelSummary>;

// Digests are checked here too: a manifest edited by hand must not smuggle a path into blobs/.
const digestSchema = z
  .string()
  .refine(isDigest, 'expected "sha256:" followed by 64 lowercase hex digits')
  .transform(parseDigest);

const manifestFileSchema = z.object({
  digest: digestSchema,
  size: z.number().int().nonnegative(),
  /** The file's name when it was imported (informational; never used as a path). */
  filename: z.string(),
  /**
   * Imported by reference (`import --link`): the bytes stay at `path`, outside the store. `size` and `mtimeMs` are
   * what they were when hashed; a file that no longer matches is refused until it is imported again.
   */
  link: z.object({ path: z.string().min(1), size: z.number().int().nonnegative(), mtimeMs: z.number() }).optional(),
});

const samplingSchema = z
  .object({
    temperature: z.number(),
    topP: z.number(),
    topK: z.number(),
    minP: z.number(),
    repeatPenalty: z.number(),
    presencePenalty: z.number(),
    frequencyPenalty: z.number(),
    repeatLastN: z.number(),
    seed: z.number(),
  })
  .partial();

export const profileSchema = z.object({
  system: z.string().optional(),
  template: z.string().optional(),
  sampling: samplingSchema.optional(),
  limits: z
    .object({ maxTokens: z.number().int().nonnegative(), stop: z.array(z.string()) })
    .partial()
    .optional(),
  messages: z
    .array(z.object({ role: z.enum(["system", "user", "assistant", "tool"]), content: z.string() }))
    .optional(),
  license: z.string().optional(),
  /** MCP servers the profile attaches (names under mcp_servers in freehold.yaml; checked when it is created). */
  mcp: z
    .array(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/))
    .max(16)
    .optional(),
  kvCacheType: z.enum(kvCacheTypes).optional(),
  flashAttention: z.enum(flashAttentionModes).optional(),
  draft: z.string().optional(),
  engine: z.enum(["auto", "node-llama-cpp", "llama-server"]).optional(),
}) satisfies z.ZodType<ModelProfile>;

/** Where the model came from: a local file, the hub (pinned to a commit), or a profile over another model. */
const sourceSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("import"), path: z.string() }),
  z.object({
    kind: z.literal("hub"),
    /** The hub's base URL it was pulled from. */
    endpoint: z.string(),
    repo: z.string(),
    /** The revision as asked for, and the commit it named then. */
    revision: z.string(),
    commit: z.string(),
  }),
  z.object({ kind: z.literal("profile"), base: z.string() }),
]);

export const manifestSchema = z.object({
  schemaVersion: z.literal(1),
  name: z.string(),
  files: z.array(manifestFileSchema).min(1),
  source: sourceSchema,
  summary: summarySchema,
  addedAt: z.iso.datetime(),
  /** A profile (`freehold create`): defaults and prompts applied to every request. */
  profile: profileSchema.optional(),
  /** A multimodal projector (mmproj GGUF) stored beside the model (`freehold import --projector`). */
  projector: manifestFileSchema.optional(),
});

/** A name's manifest: which blobs (in shard order) make the model, where it came from, and what it is. */
export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestFile = Manifest["files"][number];
export type ManifestSource = Manifest["source"];

export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** Parses manifest text; a bad manifest is a StoreError naming the file and the first wrong field. */
export function parseManifest(text: string, path: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new StoreError(
      `manifest ${path} is not valid JSON; remove it and import the model again`,
      "corrupt_manifest",
      500,
    );
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new StoreError(
      `manifest ${path} is invalid at ${issue.path.join(".") || "top level"}: ${issue.message}`,
      "corrupt_manifest",
      500,
    );
  }
  return parsed.data;
}

/** Reads and validates a manifest; null when there is none at `path`. */
export async function readManifest(path: string): Promise<Manifest | null> {
  const text = await readTextIfExists(path);
  return text === null ? null : parseManifest(text, path);
}
