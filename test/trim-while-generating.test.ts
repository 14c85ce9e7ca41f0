// A request that must trim a slot's KV cache while others generate (its slot holds another conversation) gets the
// trim at the next step, not after the others finish: node-llama-cpp's dispatch loop holds the context lock for as
// long as any decode is queued, and with two or more sequences generating one always is (decodeStep.ts, exclusive).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Token } from "node-llama-cpp";
import { DecodeStep } from "../src/engine/runner/decodeStep.js";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";

test("a trim asked for while two sequences generate runs within a few steps", {
  skip: storiesModelMissing,
}, async (t) => {
  const nlc = await import("node-llama-cpp");
  const llama = await nlc.getLlama({ gpu: false, maxThreads: 1, logLevel: nlc.LlamaLogLevel.warn });
  const model = await llama.loadModel({ modelPath: storiesModelPath });
  const context = await model.createContext({ contextSize: 1024, sequences: 3, threads: { ideal: 1, min: 1 } });
  t.after(async () => {
    await context.dispose();
    await model.dispose();
  });
  const [a, b, other] = [context.getSequence(), context.getSequence(), context.getSequence()];
  const prompt = model.tokenize("Once upon a time, there was a little girl named Lily.", true);
  await other.evaluateWithoutGeneratingNewTokens(prompt);
  const step = new DecodeStep();
  const limit = 400;
  let generated = 0;
  const generate = async (sequence: typeof a, slot: number) => {
    let count = 0;
    const tokens = step.pace(
      sequence.evaluate(prompt, { temperature: 0 }) as AsyncGenerator<Token, void, Token[] | undefined>,
      slot,
    );
    for await (const _ of tokens) {
      generated++;
      if (++count >= limit) break;
    }
  };
  const running = Promise.all([generate(a, 0), generate(b, 1)]);
  while (generated < 20) await new Promise((resolve) => setImmediate(resolve));
  let generatedAtTrim = 0;
  await step.exclusive(async () => {
    await other.eraseContextTokenRanges([{ start: 4, end: other.nextTokenIndex }]);
    generatedAtTrim = generated;
  });
  await running;
  assert.equal(other.nextTokenIndex, 4);
  // Without the step boundary the trim ran after all 2 × 400 tokens.
  assert.ok(generatedAtTrim < 40, `the trim ran after ${generatedAtTrim} of ${2 * limit} tokens`);
});
