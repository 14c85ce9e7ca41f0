/** GGUF metadata value types, as numbered in the GGUF specification (ggml docs/gguf.md). */
export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

export type GgufScalar = number | bigint | boolean | string;
export type GgufPlainValue = GgufScalar | GgufPlainValue[];

/** A metadata value with its wire type, so a file can be rewritten exactly. */
export type GgufMetadataValue =
  | { type: Exclude<GgufValueType, GgufValueType.ARRAY>; value: GgufScalar }
  | { type: GgufValueType.ARRAY; itemType: GgufValueType; value: GgufMetadataValue[] | GgufScalar[] };

export interface GgufTensorInfo {
  name: string;
  /** ggml order: dims[0] is the fastest-varying (row length). */
  dims: number[];
  /** ggml tensor type id (see tensorTypes.ts). */
  type: number;
  /** Offset relative to the start of the data section. */
  offset: number;
  /** Byte size computed from dims and type. */
  size: number;
}

export interface GgufFile {
  /** Path it was read from, when read from a file. */
  path?: string;
  version: number;
  /** Metadata in file order. Values of array type keep their item type. */
  metadata: Map<string, GgufMetadataValue>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute byte offset where tensor data begins. */
  dataOffset: number;
  fileSize: number;
}

/** What people care about in a model, computed from one GGUF file or all shards of a split model. */
export interface ModelSummary {
  architecture: string;
  name: string | null;
  parameters: number;
  /** Human form, e.g. "135.2M". */
  parameterSize: string;
  /** File type from general.file_type (e.g. "Q8_0"), or inferred from the tensor mix. */
  fileType: string;
  /** Tensor count per ggml type name, e.g. { F32: 61, Q8_0: 211 }. */
  tensorTypes: Record<string, number>;
  contextLength: number | null;
  embeddingLength: number | null;
  blockCount: number | null;
  feedForwardLength: number | null;
  headCount: number | null;
  headCountKv: number | null;
  vocabularySize: number | null;
  tokenizer: string | null;
  hasChatTemplate: boolean;
  chatTemplate: string | null;
  specialTokens: Record<string, { id: number; text: string | null }>;
  license: string | null;
  /** Total bytes of all files. */
  size: number;
  tensorCount: number;
  splitCount: number;
  /** True when the file says it was made by `freehold synth` (random weights). */
  synthetic: boolean;
  /**
   * What the KV cache's size depends on beyond the head counts (read since issue 14; manifests written before it lack
   * it, and the memory estimate then falls back to embedding ÷ heads).
   */
  attention?: AttentionShape;
}

/** The `{arch}.attention.*` keys llama.cpp sizes its KV cache from (llama_kv_cache's constructor). */
export interface AttentionShape {
  /** Per-head sizes of K and V (`key_length`, `value_length`); null: embedding ÷ heads. */
  keyLength: number | null;
  valueLength: number | null;
  /** The same for sliding-window layers when they differ (`key_length_swa`, `value_length_swa`). */
  keyLengthSwa: number | null;
  valueLengthSwa: number | null;
  /** KV heads per layer when the file lists them per layer (0 marks a recurrent layer with no KV cache). */
  headCountKvPerLayer: number[] | null;
  /** Tokens a sliding-window layer sees (`sliding_window`); null: no sliding-window attention. */
  slidingWindow: number | null;
  /** Which layers slide: every Nth pattern (a number) or a flag per layer; null: the architecture's default. */
  slidingWindowPattern: number | boolean[] | null;
  /** The last N layers reuse earlier layers' caches (`shared_kv_layers`, Gemma 3n). */
  sharedKvLayers: number | null;
  /** Multi-head latent attention (`key_length_mla` present, DeepSeek 2/3, Kimi): one compressed K per layer, no V. */
  mla: boolean;
}
