import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { readGgufFile, summarizeModel, synthesizeModel, synthPresets } from "../src/gguf/index.js";
import { runCli } from "./helpers/cli.js";
import { temporaryDirectory } from "./helpers/paths.js";

const directory = temporaryDirectory();
after(directory.dispose);

function sha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

function sha256Bytes(data: Uint8Array | (() => Uint8Array)): string {
  return createHash("sha256")
    .update(typeof data === "function" ? data() : data)
    .digest("hex");
}

async function synth(preset: string, quant: string, seed: number, name: string): Promise<string> {
  const out = join(directory.path, name);
  const result = await runCli(["synth", "--preset", preset, "--quant", quant, "--seed", String(seed), out]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /random weights/);
  return out;
}

describe("freehold synth", () => {
  for (const [preset, quant] of [
    ["tiny", "f32"],
    ["tiny", "f16"],
    ["tiny", "q8_0"],
    ["smol135m", "q8_0"],
  ] as const) {
    test(`${preset} ${quant} is byte-identical for the same seed across runs, and has the preset's exact shape`, async () => {
      const a = await synth(preset, quant, 42, `${preset}-${quant}-a.gguf`);
      const b = await synth(preset, quant, 42, `${preset}-${quant}-b.gguf`);
      const c = await synth(preset, quant, 43, `${preset}-${quant}-c.gguf`);
      assert.equal(sha256(a), sha256(b));
      assert.notEqual(sha256(a), sha256(c));
      const summary = summarizeModel([readGgufFile(a)]);
      const shape = synthPresets[preset];
      assert.equal(summary.embeddingLength, shape.embedding);
      assert.equal(summary.blockCount, shape.layers);
      assert.equal(summary.headCount, shape.heads);
      assert.equal(summary.headCountKv, shape.kvHeads);
      assert.equal(summary.feedForwardLength, shape.feedForward);
      assert.equal(summary.vocabularySize, shape.vocabulary);
      assert.equal(summary.contextLength, shape.context);
      assert.equal(summary.fileType, quant.toUpperCase());
      assert.equal(summary.synthetic, true);
      assert.equal(summary.hasChatTemplate, true);
      if (preset === "tiny") assert.ok(summary.size < 2_000_000);
      if (preset === "smol135m") assert.ok(summary.size > 160e6 && summary.size < 180e6, `size ${summary.size}`);
    });
  }

  test("llama1b-draft is llama1b's first 2 layers: the same embeddings and layer tensors, byte for byte", () => {
    const target = synthesizeModel({ preset: "llama1b", quant: "q8_0", seed: 1 });
    const draft = synthesizeModel({ preset: "llama1b-draft", quant: "q8_0", seed: 1 });
    assert.equal(draft.tensors.filter((tensor) => tensor.name.endsWith(".attn_q.weight")).length, 2);
    const byName = new Map(target.tensors.map((tensor) => [tensor.name, tensor]));
    // Compared on the small ones (the embedding is 280 MB): names, shapes, types and bytes.
    for (const tensor of draft.tensors) {
      const same = byName.get(tensor.name);
      assert.ok(same, `${tensor.name} is not in llama1b`);
      assert.deepEqual(same.dims, tensor.dims, tensor.name);
      assert.equal(same.type, tensor.type, tensor.name);
      if (tensor.name.startsWith("blk.0.attn_") || tensor.name.endsWith("_norm.weight"))
        assert.equal(sha256Bytes(same.data), sha256Bytes(tensor.data), tensor.name);
    }
  });

  test("llama1b has Llama 3.2 1B's shape: 1,235,814,400 parameters, tied embeddings, about 1.3 GB in q8_0", () => {
    // Described, not written: the file is 1.3 GB (the benchmark writes it once and caches it).
    const model = synthesizeModel({ preset: "llama1b", quant: "q8_0", seed: 1 });
    const names = model.tensors.map((tensor) => tensor.name);
    assert.ok(names.includes("token_embd.weight"));
    assert.ok(!names.includes("output.weight"), "the output reuses token_embd.weight, as in Llama 3.2 1B");
    assert.equal(names.filter((name) => name.endsWith(".attn_q.weight")).length, 16);
    const count = (tensor: { dims: number[] }) => tensor.dims.reduce((a, b) => a * b, 1);
    assert.equal(
      model.tensors.reduce((sum, tensor) => sum + count(tensor), 0),
      1_235_814_400,
    );
    const matrixBytes = model.tensors
      .filter((tensor) => tensor.dims.length === 2)
      .reduce((sum, tensor) => sum + (count(tensor) / 32) * 34, 0);
    assert.ok(matrixBytes > 1.3e9 && matrixBytes < 1.32e9, `${matrixBytes}`);
    const metadata = (key: string) => (model.metadata.get(key) as { value: unknown } | undefined)?.value;
    assert.equal(metadata("llama.attention.head_count_kv"), 8);
    assert.equal(metadata("llama.rope.freq_base"), 500000);
    assert.equal(metadata("llama.vocab_size"), 128256);
    assert.equal((metadata("tokenizer.ggml.tokens") as string[]).length, 128256);
  });

  test("bad options are refused with a clear message", async () => {
    const out = join(directory.path, "bad.gguf");
    for (const [args, pattern] of [
      [["--preset", "huge"], /unknown preset "huge"/],
      [["--quant", "q4_0"], /unknown --quant "q4_0"/],
      [["--seed", "-1"], /--seed must be an integer/],
      [["--seed", "1e3"], /--seed must be an integer/],
    ] as const) {
      const result = await runCli(["synth", ...args, out]);
      assert.equal(result.code, 2, "a bad flag value is a usage error (issue 20)");
      assert.match(result.stderr, pattern);
    }
  });
});

describe("synthetic models load and generate in node-llama-cpp (through the engine)", () => {
  for (const [preset, quant] of [
    ["tiny", "f16"],
    ["tiny", "q8_0"],
    ["smol135m", "q8_0"],
  ] as const) {
    test(`${preset} ${quant}`, async () => {
      const path = await synth(preset, quant, 7, `${preset}-${quant}-load.gguf`);
      const { Freehold } = await import("../src/library.js");
      const home = temporaryDirectory();
      const freehold = await Freehold.open({ home: home.path });
      try {
        await freehold.store.import(path, `synth-${preset}`);
        const answer = await freehold.completeText({
          model: `synth-${preset}`,
          prompt: "hello",
          maxTokens: 8,
          ignoreEos: true,
          temperature: 0,
        });
        assert.equal(answer.usage.completionTokens, 8);
        assert.equal(answer.finishReason, "length");
        const chat = await freehold.chatText({
          model: `synth-${preset}`,
          messages: [{ role: "user", content: "hi" }],
          maxTokens: 4,
          temperature: 0,
        });
        assert.ok(chat.usage.promptTokens > 3);
      } finally {
        await freehold.close();
        home.dispose();
      }
    });
  }
});
