import { renameSync, rmSync } from "node:fs";
import { SYNTHETIC_KEY } from "./summary.js";
import { f32, mixSeed, randomTensorData, str, u32 } from "./synthWeights.js";
import { FileType, TensorType, tensorByteSize, tensorTypes } from "./tensorTypes.js";
import { type GgufMetadataValue, GgufValueType } from "./types.js";
import { type GgufTensorToWrite, type GgufToWrite, writeGgufFile } from "./writer.js";

/** A synthetic model's shape (see synthPresets). */
interface SynthShape {
  embedding: number;
  layers: number;
  heads: number;
  kvHeads: number;
  feedForward: number;
  vocabulary: number;
  context: number;
  ropeFreqBase?: number;
  tiedEmbeddings?: boolean;
  /** A ranking head (cls.output, pooling type rank): a reranker. */
  ranking?: boolean;
}

const llama1bShape: SynthShape = {
  embedding: 2048,
  layers: 16,
  heads: 32,
  kvHeads: 8,
  feedForward: 8192,
  vocabulary: 128256,
  context: 131072,
  ropeFreqBase: 500000,
  tiedEmbeddings: true,
};

/**
 * Model shapes used across the project's tests and benchmarks. Keep them exact: benchmark numbers refer to them.
 * `tiedEmbeddings`: no `output.weight`; llama.cpp reuses `token_embd.weight` for the output (as Llama 3.2 1B does).
 */
export const synthPresets: Record<
  "tiny" | "tiny64" | "rerank-tiny" | "tiny-vision" | "smol135m" | "llama1b" | "llama1b-draft",
  SynthShape
> = {
  tiny: { embedding: 64, layers: 2, heads: 4, kvHeads: 2, feedForward: 128, vocabulary: 1024, context: 2048 },
  /** tiny with 64-wide heads: small enough for any test, wide enough for a quantized (q8_0/q4_0) KV cache. */
  tiny64: { embedding: 128, layers: 2, heads: 2, kvHeads: 1, feedForward: 256, vocabulary: 1024, context: 2048 },
  /**
   * A reranker (a cross-encoder with a ranking head, shaped like Qwen3-Reranker): Qwen3 architecture, a classifier
   * `cls.output` and pooling type rank, which llama.cpp and node-llama-cpp's ranking context need.
   */
  "rerank-tiny": {
    embedding: 128,
    layers: 2,
    heads: 2,
    kvHeads: 1,
    feedForward: 256,
    vocabulary: 1024,
    context: 2048,
    ranking: true,
  },
  /** The tiny language model plus a synthetic vision projector (`OUT-mmproj.gguf`) that llama-server loads. */
  "tiny-vision": { embedding: 64, layers: 2, heads: 4, kvHeads: 2, feedForward: 128, vocabulary: 1024, context: 2048 },
  smol135m: { embedding: 576, layers: 30, heads: 9, kvHeads: 3, feedForward: 1536, vocabulary: 49152, context: 8192 },
  // Llama 3.2 1B's shapes (1.24B parameters; about 1.3 GB in q8_0), with this file's synthetic tokenizer.
  llama1b: llama1bShape,
  // A draft for llama1b (speculative decoding): its first 2 layers. With the same seed its embeddings (the output
  // too: tied) and those layers are llama1b's, byte for byte, and on random weights both answer the same token, so
  // the pair measures the draft machinery at full acceptance: an upper bound of what a draft buys (docs/benchmarks.md).
  "llama1b-draft": { ...llama1bShape, layers: 2 },
};

export type SynthPreset = keyof typeof synthPresets;
export type SynthQuant = "f32" | "f16" | "q8_0";
export const synthQuants: readonly SynthQuant[] = ["f32", "f16", "q8_0"];

export interface SynthOptions {
  preset: SynthPreset;
  quant: SynthQuant;
  seed: number;
  /** The chat template (Jinja) the model carries; default ChatML. Tests give real families' templates. */
  chatTemplate?: string;
}

export const CHATML_TEMPLATE =
  "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

const TOKEN_NORMAL = 1;
const TOKEN_UNKNOWN = 2;
const TOKEN_CONTROL = 3;
const TOKEN_BYTE = 6;

/** The first byte token's id (after the five special tokens). */
const BYTE_TOKENS_START = 5;

/** A byte-fallback SentencePiece-style vocabulary: specials, 256 byte tokens, then generated pieces. */
function buildVocabulary(size: number): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"];
  const types = [TOKEN_UNKNOWN, TOKEN_CONTROL, TOKEN_CONTROL, TOKEN_CONTROL, TOKEN_CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TOKEN_BYTE);
  }
  const seen = new Set(tokens);
  const add = (piece: string) => {
    if (tokens.length < size && !seen.has(piece)) {
      seen.add(piece);
      tokens.push(piece);
      types.push(TOKEN_NORMAL);
    }
  };
  add("▁");
  for (let c = 33; c < 127; c++) add(String.fromCharCode(c));
  const letters = "etaoinshrdlucmfwypvbgkjqxz";
  let pieces = [...letters];
  for (let length = 1; tokens.length < size && length < 8; length++) {
    for (const piece of pieces) add(`▁${piece}`);
    for (const piece of pieces) if (length > 1) add(piece);
    const longer: string[] = [];
    for (const piece of pieces) {
      for (const letter of letters) {
        longer.push(piece + letter);
        if (longer.length > size) break;
      }
      if (longer.length > size) break;
    }
    pieces = longer;
  }
  const scores = tokens.map((_, i) => (types[i] === TOKEN_NORMAL ? -i : 0));
  return { tokens, scores, types };
}

/** Describes a synthetic llama-architecture model: metadata plus lazily generated random tensors. */
export function synthesizeModel(options: SynthOptions): GgufToWrite {
  const shape = synthPresets[options.preset];
  if (!shape) throw new RangeError(`unknown preset ${options.preset} (choose ${Object.keys(synthPresets).join(", ")})`);
  if (!synthQuants.includes(options.quant))
    throw new RangeError(`unknown quantization ${options.quant} (choose ${synthQuants.join(", ")})`);
  if (!Number.isInteger(options.seed) || options.seed < 0 || options.seed > 0xffffffff) {
    throw new RangeError(`seed must be an integer from 0 to 4294967295, not ${options.seed}`);
  }
  if (options.chatTemplate !== undefined && options.chatTemplate.trim() === "")
    throw new RangeError("the chat template is empty; give a Jinja template or leave it out for ChatML");
  const headDim = shape.embedding / shape.heads;
  const ranking = "ranking" in shape && shape.ranking;
  const architecture = ranking ? "qwen3" : "llama";
  const kvDim = headDim * shape.kvHeads;
  const vocabulary = buildVocabulary(shape.vocabulary);
  const matrixType = { f32: TensorType.F32, f16: TensorType.F16, q8_0: TensorType.Q8_0 }[options.quant];
  const fileType = { f32: FileType.ALL_F32, f16: FileType.MOSTLY_F16, q8_0: FileType.MOSTLY_Q8_0 }[options.quant];

  const metadata = new Map<string, GgufMetadataValue>([
    ["general.architecture", str(architecture)],
    ["general.name", str(`freehold synthetic ${options.preset}`)],
    [
      "general.description",
      str(
        "Synthetic model made by `freehold synth`: random weights, so its text is noise. For tests, demos and speed benchmarks.",
      ),
    ],
    ["general.license", str("MIT")],
    ["general.file_type", u32(fileType)],
    ["general.quantization_version", u32(2)],
    [SYNTHETIC_KEY, { type: GgufValueType.BOOL, value: true }],
    ["freehold.synthetic.preset", str(options.preset)],
    ["freehold.synthetic.seed", u32(options.seed)],
    [`${architecture}.context_length`, u32(shape.context)],
    [`${architecture}.embedding_length`, u32(shape.embedding)],
    [`${architecture}.block_count`, u32(shape.layers)],
    [`${architecture}.feed_forward_length`, u32(shape.feedForward)],
    [`${architecture}.attention.head_count`, u32(shape.heads)],
    [`${architecture}.attention.head_count_kv`, u32(shape.kvHeads)],
    [`${architecture}.rope.dimension_count`, u32(headDim)],
    [`${architecture}.rope.freq_base`, f32(shape.ropeFreqBase ?? 10000)],
    [`${architecture}.attention.layer_norm_rms_epsilon`, f32(1e-5)],
    [`${architecture}.vocab_size`, u32(shape.vocabulary)],
    // llama.cpp's LLAMA_POOLING_TYPE_RANK.
    // Two labels as Qwen3-Reranker has ("yes", "no"): llama.cpp softmaxes them, the score is the first.
    ...(ranking
      ? ([
          [`${architecture}.pooling_type`, u32(4)],
          [
            `${architecture}.classifier.output_labels`,
            { type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: ["yes", "no"] },
          ],
        ] as [string, GgufMetadataValue][])
      : []),
    ["tokenizer.ggml.model", str("llama")],
    ["tokenizer.ggml.tokens", { type: GgufValueType.ARRAY, itemType: GgufValueType.STRING, value: vocabulary.tokens }],
    ["tokenizer.ggml.scores", { type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value: vocabulary.scores }],
    [
      "tokenizer.ggml.token_type",
      { type: GgufValueType.ARRAY, itemType: GgufValueType.INT32, value: vocabulary.types },
    ],
    ["tokenizer.ggml.unknown_token_id", u32(0)],
    ["tokenizer.ggml.bos_token_id", u32(1)],
    ["tokenizer.ggml.eos_token_id", u32(4)],
    ["tokenizer.ggml.eot_token_id", u32(4)],
    ["tokenizer.ggml.padding_token_id", u32(0)],
    ["tokenizer.ggml.add_bos_token", { type: GgufValueType.BOOL, value: false }],
    ["tokenizer.ggml.add_eos_token", { type: GgufValueType.BOOL, value: false }],
    ["tokenizer.chat_template", str(options.chatTemplate ?? CHATML_TEMPLATE)],
  ]);

  const tensors: GgufTensorToWrite[] = [];
  const add = (name: string, dims: number[], type: number, scale: number) => {
    const index = tensors.length;
    const elements = dims.reduce((a, b) => a * b, 1);
    tensors.push({
      name,
      dims,
      type,
      data: () => randomTensorData(type, elements, scale, mixSeed(options.seed, index)),
    });
  };
  const ones = (name: string, dims: number[]) => {
    const elements = dims.reduce((a, b) => a * b, 1);
    tensors.push({
      name,
      dims,
      type: TensorType.F32,
      data: () => new Uint8Array(new Float32Array(elements).fill(1).buffer),
    });
  };
  const scale = (fanIn: number) => Math.sqrt(3 / fanIn);

  add("token_embd.weight", [shape.embedding, shape.vocabulary], matrixType, 1);
  for (let layer = 0; layer < shape.layers; layer++) {
    const p = `blk.${layer}`;
    ones(`${p}.attn_norm.weight`, [shape.embedding]);
    add(`${p}.attn_q.weight`, [shape.embedding, shape.embedding], matrixType, scale(shape.embedding));
    add(`${p}.attn_k.weight`, [shape.embedding, kvDim], matrixType, scale(shape.embedding));
    add(`${p}.attn_v.weight`, [shape.embedding, kvDim], matrixType, scale(shape.embedding));
    add(`${p}.attn_output.weight`, [shape.embedding, shape.embedding], matrixType, scale(shape.embedding));
    if (ranking) {
      ones(`${p}.attn_q_norm.weight`, [headDim]);
      ones(`${p}.attn_k_norm.weight`, [headDim]);
    }
    ones(`${p}.ffn_norm.weight`, [shape.embedding]);
    add(`${p}.ffn_gate.weight`, [shape.embedding, shape.feedForward], matrixType, scale(shape.embedding));
    add(`${p}.ffn_up.weight`, [shape.embedding, shape.feedForward], matrixType, scale(shape.embedding));
    add(`${p}.ffn_down.weight`, [shape.feedForward, shape.embedding], matrixType, scale(shape.feedForward));
  }
  ones("output_norm.weight", [shape.embedding]);
  if (!shape.tiedEmbeddings)
    add("output.weight", [shape.embedding, shape.vocabulary], matrixType, scale(shape.embedding));
  if (visionPresets.includes(options.preset)) {
    // The vision preset never picks a byte token at temperature 0 (their logits are 0, far below the best of
    // hundreds of random ones): its noise is valid UTF-8, which llama-server's output parser insists on.
    const output = tensors.at(-1)!;
    const make = output.data as () => Uint8Array;
    const rowBytes = tensorByteSize(tensorTypes.get(matrixType)!, shape.embedding, shape.embedding);
    output.data = () => {
      const bytes = make();
      bytes.fill(0, BYTE_TOKENS_START * rowBytes, (BYTE_TOKENS_START + 256) * rowBytes);
      return bytes;
    };
  }
  // The ranking head: one relevance logit from the pooled hidden state.
  if (ranking) add("cls.output.weight", [shape.embedding, 2], TensorType.F32, 1);
  return { version: 3, metadata, tensors };
}

/** Presets that come with a vision projector. */
export const visionPresets: readonly SynthPreset[] = ["tiny-vision"];

/** The projector's shape: a one-block CLIP vision tower and LLaVA's two-layer MLP into the language model. */
const projectorShape = { imageSize: 32, patchSize: 8, embedding: 32, heads: 4, feedForward: 64, hidden: 64 } as const;

/** Image tokens one image becomes with the synthetic projector: (image size / patch size)². */
export const SYNTHETIC_IMAGE_TOKENS = (projectorShape.imageSize / projectorShape.patchSize) ** 2;

/**
 * A synthetic multimodal projector (mmproj) for a synthetic model: the metadata keys and tensors llama.cpp's
 * clip.cpp needs for projector type "mlp" (LLaVA), with random weights. Its tower has one block, which LLaVA's
 * graph skips (it takes the features before the last block), so an image costs almost nothing to encode.
 */
export function synthesizeProjector(options: SynthOptions): GgufToWrite {
  const language = synthPresets[options.preset];
  const p = projectorShape;
  const patches = (p.imageSize / p.patchSize) ** 2;
  const metadata = new Map<string, GgufMetadataValue>([
    ["general.architecture", str("clip")],
    ["general.name", str(`freehold synthetic ${options.preset} projector`)],
    ["general.description", str("Synthetic vision projector made by `freehold synth`: random weights, for tests.")],
    ["general.license", str("MIT")],
    ["general.file_type", u32(FileType.ALL_F32)],
    [SYNTHETIC_KEY, { type: GgufValueType.BOOL, value: true }],
    ["clip.projector_type", str("mlp")],
    ["clip.has_vision_encoder", { type: GgufValueType.BOOL, value: true }],
    ["clip.has_text_encoder", { type: GgufValueType.BOOL, value: false }],
    ["clip.use_gelu", { type: GgufValueType.BOOL, value: true }],
    ["clip.vision.image_size", u32(p.imageSize)],
    ["clip.vision.patch_size", u32(p.patchSize)],
    ["clip.vision.embedding_length", u32(p.embedding)],
    ["clip.vision.feed_forward_length", u32(p.feedForward)],
    ["clip.vision.projection_dim", u32(language.embedding)],
    ["clip.vision.block_count", u32(1)],
    ["clip.vision.attention.head_count", u32(p.heads)],
    ["clip.vision.attention.layer_norm_epsilon", f32(1e-5)],
    ["clip.vision.image_mean", { type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value: [0.5, 0.5, 0.5] }],
    ["clip.vision.image_std", { type: GgufValueType.ARRAY, itemType: GgufValueType.FLOAT32, value: [0.5, 0.5, 0.5] }],
  ]);
  const tensors: GgufTensorToWrite[] = [];
  const add = (name: string, dims: number[], scale: number) => {
    const index = tensors.length;
    const elements = dims.reduce((a, b) => a * b, 1);
    tensors.push({
      name,
      dims,
      type: TensorType.F32,
      data: () => randomTensorData(TensorType.F32, elements, scale, mixSeed(options.seed ^ 0x5eed, index)),
    });
  };
  const e = p.embedding;
  add("v.patch_embd.weight", [p.patchSize, p.patchSize, 3, e], Math.sqrt(3 / (p.patchSize * p.patchSize * 3)));
  add("v.patch_embd.bias", [e], 0.1);
  add("v.position_embd.weight", [e, patches], 0.1);
  for (const part of ["attn_q", "attn_k", "attn_v", "attn_out"]) {
    add(`v.blk.0.${part}.weight`, [e, e], Math.sqrt(3 / e));
    add(`v.blk.0.${part}.bias`, [e], 0.01);
  }
  add("v.blk.0.ln1.weight", [e], 0.1);
  add("v.blk.0.ln1.bias", [e], 0.01);
  add("v.blk.0.ln2.weight", [e], 0.1);
  add("v.blk.0.ln2.bias", [e], 0.01);
  add("v.blk.0.ffn_up.weight", [e, p.feedForward], Math.sqrt(3 / e));
  add("v.blk.0.ffn_up.bias", [p.feedForward], 0.01);
  add("v.blk.0.ffn_down.weight", [p.feedForward, e], Math.sqrt(3 / p.feedForward));
  add("v.blk.0.ffn_down.bias", [e], 0.01);
  add("mm.0.weight", [e, p.hidden], Math.sqrt(3 / e));
  add("mm.0.bias", [p.hidden], 0.01);
  add("mm.2.weight", [p.hidden, language.embedding], Math.sqrt(3 / p.hidden));
  add("mm.2.bias", [language.embedding], 0.01);
  return { version: 3, metadata, tensors };
}

/** Where a vision preset's projector goes: `OUT.gguf` → `OUT-mmproj.gguf`. */
export function projectorPathFor(path: string): string {
  return path.replace(/(\.gguf)?$/i, "-mmproj.gguf");
}

function writeAtomically(path: string, model: GgufToWrite): number {
  const temporary = `${path}.tmp-${process.pid}`;
  try {
    const size = writeGgufFile(temporary, model);
    renameSync(temporary, path);
    return size;
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/**
 * Writes a synthetic model to `path` atomically (temporary file, fsync, rename). Returns its size in bytes. A vision
 * preset also writes its projector (see projectorPathFor).
 */
export function writeSyntheticModel(path: string, options: SynthOptions): number {
  const size = writeAtomically(path, synthesizeModel(options));
  if (visionPresets.includes(options.preset)) writeAtomically(projectorPathFor(path), synthesizeProjector(options));
  return size;
}
