import type { FlashAttentionMode, KvCacheType } from "../core/memorySettings.js";
import type { AttentionShape, ModelSummary } from "../gguf/types.js";

export interface MemoryEstimate {
  weights: number;
  kvCache: number;
  overhead: number;
  total: number;
  /** The context size per sequence the estimate assumes (capped by the model's training context). */
  contextSize: number;
}

const MiB = 1024 * 1024;

/** Bytes per element of each KV cache type (ggml's block sizes: q8_0 is 34 bytes per 32, q4_0 18 per 32). */
const bytesPerElement: Record<KvCacheType, number> = { f16: 2, q8_0: 34 / 32, q4_0: 18 / 32 };

/**
 * Which layers use sliding-window attention when the file does not list them: [every Nth, dense first] per
 * architecture, from llama.cpp's `set_swa_pattern` calls (as node-llama-cpp's GgufInsights reads them).
 */
const swaPatterns: Record<string, [number, boolean]> = {
  llama4: [4, false],
  afmoe: [4, false],
  "modern-bert": [3, true],
  phi3: [1, false],
  plamo3: [8, false],
  gemma2: [2, false],
  gemma3: [6, false],
  gemma3n: [5, false],
  "gemma-embedding": [6, false],
  cohere2: [4, false],
  olmo2: [4, false],
  exaone4: [4, false],
  "exaone-moe": [4, false],
  "gpt-oss": [2, false],
  smallthinker: [4, true],
};

function isSlidingLayer(architecture: string, pattern: AttentionShape["slidingWindowPattern"], layer: number) {
  if (Array.isArray(pattern)) return pattern[layer] === true;
  const [fallback, denseFirst] = swaPatterns[architecture] ?? [1, false];
  const every = typeof pattern === "number" ? Math.max(0, Math.floor(pattern)) : fallback;
  if (every === 0) return true;
  return denseFirst ? layer % every !== 0 : layer % every < every - 1;
}

const pad256 = (n: number) => Math.ceil(n / 256) * 256;

type Summary = Pick<
  ModelSummary,
  | "architecture"
  | "size"
  | "blockCount"
  | "embeddingLength"
  | "headCount"
  | "headCountKv"
  | "contextLength"
  | "vocabularySize"
  | "attention"
>;

/**
 * K and V elements the cache holds, summed over layers, the way llama.cpp's llama_kv_cache sizes it (and
 * node-llama-cpp's GgufInsights estimates it): per layer, head size × KV heads × cells, where sliding-window layers
 * keep only `sequences × window + batch` cells, layers that share another's cache (Gemma 3n) or are recurrent keep
 * none, and MLA layers keep one compressed K and no V. Files summarised before the attention keys were read fall back
 * to embedding ÷ heads per head.
 */
function kvElements(summary: Summary, cells: number, sequences: number, batchSize: number): { k: number; v: number } {
  const layers = summary.blockCount ?? 0;
  const embedding = summary.embeddingLength ?? 0;
  const heads = summary.headCount ?? 1;
  const headSize = heads > 0 ? embedding / heads : embedding;
  const shape = summary.attention;
  const keyLength = shape?.keyLength ?? headSize;
  const valueLength = shape?.valueLength ?? headSize;
  const window = shape?.slidingWindow ?? 0;
  const trained = summary.contextLength ?? Number.POSITIVE_INFINITY;
  const perSequence = cells / Math.max(1, sequences);
  // llama.cpp keeps a reduced cache for sliding layers only when the window is shorter than the context.
  const sliding = window > 0 && window < perSequence && window < trained;
  const slidingCells = sliding ? Math.min(cells, pad256(sequences * window + batchSize + 1)) : cells;
  const shared = shape?.sharedKvLayers ?? 0;
  let k = 0;
  let v = 0;
  for (let layer = 0; layer < layers; layer++) {
    if (shared > 0 && layer >= layers - shared) continue;
    const kvHeads = shape?.headCountKvPerLayer?.[layer] ?? summary.headCountKv ?? heads;
    if (kvHeads === 0) continue; // a recurrent layer: its state is small beside the cache
    const swa = sliding && isSlidingLayer(summary.architecture, shape?.slidingWindowPattern ?? null, layer);
    const layerCells = swa ? slidingCells : cells;
    k += (swa ? (shape?.keyLengthSwa ?? keyLength) : keyLength) * kvHeads * layerCells;
    if (!shape?.mla) v += (swa ? (shape?.valueLengthSwa ?? valueLength) : valueLength) * kvHeads * layerCells;
  }
  return { k, v };
}

/** Elements per quantization block: llama.cpp needs every head's K and V rows to be whole blocks. */
const blockElements: Record<KvCacheType, number> = { f16: 1, q8_0: 32, q4_0: 32 };

/**
 * Why llama.cpp would refuse this model's KV cache in `type` (its heads are not a whole number of quantization
 * blocks: "K cache type q8_0 with block size 32 does not divide n_embd_head_k"); null when it can have it.
 */
export function kvCacheTypeProblem(summary: Summary, type: KvCacheType): string | null {
  const block = blockElements[type];
  if (block === 1) return null;
  const heads = summary.headCount ?? 1;
  const headSize = heads > 0 ? (summary.embeddingLength ?? 0) / heads : 0;
  const shape = summary.attention;
  const sizes = [shape?.keyLength ?? headSize, shape?.mla ? null : (shape?.valueLength ?? headSize)];
  if (shape?.slidingWindow) sizes.push(shape.keyLengthSwa, shape.mla ? null : shape.valueLengthSwa);
  const bad = sizes.find((size) => size !== null && size !== undefined && size % block !== 0);
  if (bad === undefined) return null;
  return `its attention heads are ${bad} wide, and a ${type} KV cache needs a multiple of ${block}`;
}

export interface MemoryOptions {
  batchSize?: number;
  /** The KV cache's element type (FREEHOLD_KV_CACHE_TYPE). Default f16. */
  kvCacheType?: KvCacheType;
  /** Without flash attention llama.cpp materialises the attention scores (f32, cells × batch × heads). */
  flashAttention?: FlashAttentionMode;
}

/**
 * What loading a model will take, from its GGUF summary alone (before anything is allocated): the weights as
 * stored, the KV cache (of the chosen type) for every sequence at the context size, and the compute buffers (logits
 * for a batch, attention scores when flash attention is off, plus a fixed allowance). An estimate, deliberately on
 * the high side.
 */
export function estimateModelMemory(
  summary: Summary,
  contextSize: number,
  sequences: number,
  options: MemoryOptions = {},
): MemoryEstimate {
  const batchSize = options.batchSize ?? 512;
  const context = Math.min(contextSize, summary.contextLength ?? contextSize);
  const cells = context * sequences;
  const batch = Math.min(batchSize, context);
  const { k, v } = kvElements(summary, cells, sequences, batch);
  const kvCache = Math.ceil((k + v) * bytesPerElement[options.kvCacheType ?? "f16"]);
  // "auto" counts as on: llama.cpp turns it on wherever the model supports it, the CPU included.
  const scores = options.flashAttention === "off" ? context * batch * (summary.headCount ?? 1) * 4 : 0;
  const overhead = 64 * MiB + (summary.vocabularySize ?? 0) * batch * 4 + scores;
  const weights = summary.size;
  return { weights, kvCache, overhead, total: weights + kvCache + overhead, contextSize: context };
}

export function formatMemory(bytes: number): string {
  if (bytes >= 1024 * MiB) return `${(bytes / (1024 * MiB)).toFixed(1)} GiB`;
  return `${Math.ceil(bytes / MiB)} MiB`;
}
