import { ModelFileError } from "../core/errors.js";
import { fileTypeNames, tensorTypes } from "./tensorTypes.js";
import {
  type AttentionShape,
  type GgufFile,
  type GgufMetadataValue,
  GgufValueType,
  type ModelSummary,
} from "./types.js";

/** The metadata key freehold's synthetic models carry, so everything that shows them can say "random weights". */
export const SYNTHETIC_KEY = "freehold.synthetic";

function scalarOf(value: GgufMetadataValue | undefined): unknown {
  if (!value) return undefined;
  if (value.type === GgufValueType.ARRAY) return undefined;
  return value.value;
}

export function metadataString(file: GgufFile, key: string): string | null {
  const value = scalarOf(file.metadata.get(key));
  return typeof value === "string" ? value : null;
}

/** A numeric value; for per-layer arrays (some models vary heads per layer) the largest item. */
export function metadataNumber(file: GgufFile, key: string): number | null {
  const entry = file.metadata.get(key);
  if (!entry) return null;
  if (entry.type === GgufValueType.ARRAY) {
    const numbers = (entry.value as unknown[]).filter((v): v is number => typeof v === "number");
    return numbers.length > 0 ? Math.max(...numbers) : null;
  }
  const value = entry.value;
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  return null;
}

export function metadataArrayLength(file: GgufFile, key: string): number | null {
  const entry = file.metadata.get(key);
  return entry?.type === GgufValueType.ARRAY ? entry.value.length : null;
}

/** "135.2M", "7.2B", "292.9K". */
export function formatParameterCount(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

const specialTokenKeys = ["bos", "eos", "eot", "eom", "unknown", "padding", "separator", "mask"] as const;

/**
 * Summarises a model from one GGUF file, or from every shard of a split model in order (metadata from the first,
 * tensors from all).
 */
export function summarizeModel(files: GgufFile[]): ModelSummary {
  const first = files[0];
  if (!first) throw new ModelFileError("no model files to summarise");
  const architecture = metadataString(first, "general.architecture") ?? "unknown";
  const key = (suffix: string) => metadataNumber(first, `${architecture}.${suffix}`);

  let parameters = 0;
  const tensorTypeCounts: Record<string, number> = {};
  const bytesByType = new Map<string, number>();
  let tensorCount = 0;
  for (const file of files) {
    for (const tensor of file.tensors) {
      const elements = tensor.dims.reduce((a, b) => a * b, 1);
      parameters += elements;
      const typeName = tensorTypes.get(tensor.type)?.name ?? String(tensor.type);
      tensorTypeCounts[typeName] = (tensorTypeCounts[typeName] ?? 0) + 1;
      if (tensor.dims.length >= 2) bytesByType.set(typeName, (bytesByType.get(typeName) ?? 0) + tensor.size);
      tensorCount++;
    }
  }

  const fileTypeId = metadataNumber(first, "general.file_type");
  let fileType = fileTypeId === null ? null : (fileTypeNames.get(fileTypeId) ?? `unknown(${fileTypeId})`);
  if (fileType === null) {
    // No declared file type: name it after the type holding most matrix bytes.
    fileType = [...bytesByType.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "unknown";
  }

  const tokens = first.metadata.get("tokenizer.ggml.tokens");
  const tokenText = (id: number): string | null => {
    if (tokens?.type !== GgufValueType.ARRAY) return null;
    const text = tokens.value[id];
    return typeof text === "string" ? text : null;
  };
  const specialTokens: ModelSummary["specialTokens"] = {};
  const vocabularySize = key("vocab_size") ?? metadataArrayLength(first, "tokenizer.ggml.tokens");
  for (const name of specialTokenKeys) {
    // llama.cpp writes the separator key misspelt ("seperator"); accept both.
    const id =
      metadataNumber(first, `tokenizer.ggml.${name}_token_id`) ??
      (name === "separator" ? metadataNumber(first, "tokenizer.ggml.seperator_token_id") : null);
    // Files mark "no such token" with -1 stored as an unsigned 0xFFFFFFFF.
    if (id !== null && id >= 0 && (vocabularySize === null || id < vocabularySize)) {
      specialTokens[name] = { id, text: tokenText(id) };
    }
  }

  const chatTemplate = metadataString(first, "tokenizer.chat_template");
  const synthetic = scalarOf(first.metadata.get(SYNTHETIC_KEY)) === true;
  return {
    architecture,
    name: metadataString(first, "general.name"),
    parameters,
    parameterSize: formatParameterCount(parameters),
    fileType,
    tensorTypes: tensorTypeCounts,
    contextLength: key("context_length"),
    embeddingLength: key("embedding_length"),
    blockCount: key("block_count"),
    feedForwardLength: key("feed_forward_length"),
    headCount: key("attention.head_count"),
    headCountKv: key("attention.head_count_kv"),
    vocabularySize,
    tokenizer: metadataString(first, "tokenizer.ggml.model"),
    hasChatTemplate: chatTemplate !== null && chatTemplate.length > 0,
    chatTemplate,
    specialTokens,
    license: metadataString(first, "general.license"),
    size: files.reduce((total, file) => total + file.fileSize, 0),
    tensorCount,
    splitCount: files.length,
    synthetic,
    attention: attentionShape(first, architecture),
  };
}

function metadataArray(file: GgufFile, key: string): unknown[] | null {
  const entry = file.metadata.get(key);
  return entry?.type === GgufValueType.ARRAY ? (entry.value as unknown[]) : null;
}

function attentionShape(file: GgufFile, architecture: string): AttentionShape {
  const key = (suffix: string) => metadataNumber(file, `${architecture}.attention.${suffix}`);
  const perLayer = metadataArray(file, `${architecture}.attention.head_count_kv`);
  const pattern = metadataArray(file, `${architecture}.attention.sliding_window_pattern`);
  return {
    keyLength: key("key_length"),
    valueLength: key("value_length"),
    keyLengthSwa: key("key_length_swa"),
    valueLengthSwa: key("value_length_swa"),
    headCountKvPerLayer: perLayer ? perLayer.map((value) => Number(value)) : null,
    slidingWindow: key("sliding_window"),
    slidingWindowPattern: pattern ? pattern.map(Boolean) : key("sliding_window_pattern"),
    sharedKvLayers: key("shared_kv_layers"),
    mla: key("key_length_mla") !== null && key("value_length_mla") !== null,
  };
}
