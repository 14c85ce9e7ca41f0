import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { AttentionShape, ModelSummary } from "../gguf/types.js";
import { estimateModelMemory, kvCacheTypeProblem } from "./memory.js";

type Summary = Parameters<typeof estimateModelMemory>[0];

/** A Llama-3.2-1B-like shape: 16 layers, 2048 wide, 32 heads of 64, 8 KV heads. */
function llama1b(attention?: Partial<AttentionShape>, overrides: Partial<ModelSummary> = {}): Summary {
  return {
    architecture: "llama",
    size: 1_300_000_000,
    blockCount: 16,
    embeddingLength: 2048,
    headCount: 32,
    headCountKv: 8,
    contextLength: 131072,
    vocabularySize: 128256,
    ...(attention
      ? {
          attention: {
            keyLength: null,
            valueLength: null,
            keyLengthSwa: null,
            valueLengthSwa: null,
            headCountKvPerLayer: null,
            slidingWindow: null,
            slidingWindowPattern: null,
            sharedKvLayers: null,
            mla: false,
            ...attention,
          },
        }
      : {}),
    ...overrides,
  };
}

/** 16 layers × 8 KV heads × 64 per head × K and V × cells. */
const f16Bytes = (cells: number) => 16 * 8 * 64 * 2 * cells * 2;

describe("memory estimate", () => {
  test("the f16 KV cache of a GQA model: layers × KV heads × head size × K,V × cells × 2 bytes", () => {
    const estimate = estimateModelMemory(llama1b({}), 4096, 2);
    assert.equal(estimate.kvCache, f16Bytes(8192));
    assert.equal(estimate.contextSize, 4096);
    assert.equal(estimate.total, estimate.weights + estimate.kvCache + estimate.overhead);
  });

  test("the KV cache type scales it: q8_0 is 34/64 of f16, q4_0 18/64 (ggml's block sizes)", () => {
    const f16 = estimateModelMemory(llama1b({}), 4096, 2, { kvCacheType: "f16" });
    const q8 = estimateModelMemory(llama1b({}), 4096, 2, { kvCacheType: "q8_0" });
    const q4 = estimateModelMemory(llama1b({}), 4096, 2, { kvCacheType: "q4_0" });
    assert.equal(q8.kvCache, (f16.kvCache * 34) / 64);
    assert.equal(q4.kvCache, (f16.kvCache * 18) / 64);
    assert.ok(q8.total < f16.total && q4.total < q8.total);
    assert.equal(q8.weights, f16.weights, "the weights do not change");
  });

  test("flash attention off adds the attention-score buffer (f32, context × batch × heads); auto and on do not", () => {
    const on = estimateModelMemory(llama1b({}), 4096, 2, { flashAttention: "on" });
    const auto = estimateModelMemory(llama1b({}), 4096, 2, { flashAttention: "auto" });
    const off = estimateModelMemory(llama1b({}), 4096, 2, { flashAttention: "off" });
    assert.equal(auto.overhead, on.overhead);
    assert.equal(off.overhead - on.overhead, 4096 * 512 * 32 * 4);
  });

  test("head sizes come from the file's key_length/value_length, not embedding ÷ heads", () => {
    // Qwen3-style: 128 per head although 2048 / 32 = 64.
    const file = estimateModelMemory(llama1b({ keyLength: 128, valueLength: 128 }), 4096, 1);
    assert.equal(file.kvCache, f16Bytes(4096) * 2);
    const asymmetric = estimateModelMemory(llama1b({ keyLength: 192, valueLength: 128 }), 4096, 1);
    assert.equal(asymmetric.kvCache, 16 * 8 * (192 + 128) * 4096 * 2);
  });

  test("a summary from before the attention keys were read falls back to embedding ÷ heads", () => {
    assert.equal(estimateModelMemory(llama1b(), 4096, 1).kvCache, f16Bytes(4096));
  });

  test("sliding-window layers keep only sequences × window + batch cells (Gemma 3: 5 of every 6 layers)", () => {
    const gemma = llama1b({ slidingWindow: 512 }, { architecture: "gemma3", blockCount: 12 });
    const estimate = estimateModelMemory(gemma, 8192, 1);
    const perCell = 8 * 64 * 2 * 2;
    // Layers 5 and 11 are global (8192 cells); the other 10 keep pad256(512 + 512 + 1) = 1280.
    assert.equal(estimate.kvCache, perCell * (2 * 8192 + 10 * 1280));
    // A window as long as the context is no window at all.
    const wide = estimateModelMemory(gemma, 512, 1);
    assert.equal(wide.kvCache, perCell * 12 * 512);
    // A pattern listed per layer wins over the architecture's.
    const listed = llama1b(
      { slidingWindow: 512, slidingWindowPattern: [true, false, true, false] },
      { architecture: "gemma3", blockCount: 4 },
    );
    assert.equal(estimateModelMemory(listed, 8192, 1).kvCache, perCell * (2 * 8192 + 2 * 1280));
  });

  test("MLA layers keep one compressed K and no V; shared-KV and recurrent layers keep none", () => {
    const mla = llama1b({ mla: true, keyLength: 576, valueLength: 512, headCountKvPerLayer: null }, { headCountKv: 1 });
    assert.equal(estimateModelMemory(mla, 4096, 1).kvCache, 16 * 576 * 4096 * 2);
    const shared = llama1b({ sharedKvLayers: 6 });
    assert.equal(estimateModelMemory(shared, 4096, 1).kvCache, (f16Bytes(4096) * 10) / 16);
    const hybrid = llama1b({ headCountKvPerLayer: [0, 8, 0, 8, 0, 8, 0, 8, 0, 8, 0, 8, 0, 8, 0, 8] });
    assert.equal(estimateModelMemory(hybrid, 4096, 1).kvCache, f16Bytes(4096) / 2);
  });

  test("the context is capped by what the model was trained on", () => {
    const estimate = estimateModelMemory(llama1b({}, { contextLength: 1024 }), 4096, 1);
    assert.equal(estimate.contextSize, 1024);
    assert.equal(estimate.kvCache, f16Bytes(1024));
  });

  test("a quantized cache needs heads that are whole 32-element blocks (llama.cpp refuses others)", () => {
    assert.equal(kvCacheTypeProblem(llama1b({}), "q8_0"), null);
    assert.equal(kvCacheTypeProblem(llama1b({}), "f16"), null);
    const stories = llama1b(undefined, { embeddingLength: 64, headCount: 8 });
    assert.match(
      kvCacheTypeProblem(stories, "q8_0") ?? "",
      /heads are 8 wide, and a q8_0 KV cache needs a multiple of 32/,
    );
    assert.equal(kvCacheTypeProblem(stories, "f16"), null);
    assert.match(kvCacheTypeProblem(llama1b({ valueLength: 48 }), "q4_0") ?? "", /48 wide/);
    // MLA keeps no V: its value length does not matter.
    assert.equal(kvCacheTypeProblem(llama1b({ mla: true, keyLength: 576, valueLength: 48 }), "q8_0"), null);
  });
});
