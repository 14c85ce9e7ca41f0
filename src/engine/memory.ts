import type { ModelSummary } from "../gguf/types.js";

export interface MemoryEstimate {
  weights: number;
  kvCache: number;
  overhead: number;
  total: number;
  /** The context size per sequence the estimate assumes (capped by the model's training context). */
  contextSize: number;
}

const MiB = 1024 * 1024;

/**
 * What loading a model will take, from its GGUF summary alone (before anything is allocated): the weights as
 * stored, the f16 KV cache for every sequence at the context size, and the compute buffers (logits for a batch plus
 * a fixed allowance). An estimate, deliberately on the high side.
 */
export function estimateModelMemory(
  summary: Pick<
    ModelSummary,
    "size" | "blockCount" | "embeddingLength" | "headCount" | "headCountKv" | "contextLength" | "vocabularySize"
  >,
  contextSize: number,
  sequences: number,
  batchSize = 512,
): MemoryEstimate {
  const context = Math.min(contextSize, summary.contextLength ?? contextSize);
  const layers = summary.blockCount ?? 0;
  const embedding = summary.embeddingLength ?? 0;
  const heads = summary.headCount ?? 1;
  const kvHeads = summary.headCountKv ?? heads;
  const kvWidth = heads > 0 ? (embedding / heads) * kvHeads : embedding;
  // K and V, 2 bytes each (f16), per layer, per position, per sequence.
  const kvCache = layers * context * sequences * kvWidth * 2 * 2;
  const overhead = 64 * MiB + (summary.vocabularySize ?? 0) * Math.min(batchSize, context) * 4;
  const weights = summary.size;
  return { weights, kvCache, overhead, total: weights + kvCache + overhead, contextSize: context };
}

export function formatMemory(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${(bytes / (1024 * MiB)).toFixed(1)} GiB`;
  return `${Math.ceil(bytes / MiB)} MiB`;
}
