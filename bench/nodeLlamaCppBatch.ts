// node --import tsx bench/nodeLlamaCppBatch.ts [model.gguf]
//
// A diagnostic for the concurrency mode, without freehold or HTTP: node-llama-cpp alone (UV_THREADPOOL_SIZE=1, as
// freehold's runners), one context of 4 sequences, 1 and then 4 sequences generating 64 tokens at once (distinct
// prompts, temperature 0). Prints the aggregate rate (tokens / time from start to the last token) per thread count,
// to tell what freehold adds from what node-llama-cpp's batching and the prebuilt binaries allow.
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LlamaContextSequence, LlamaModel } from "node-llama-cpp";
import { median } from "./report.js";

if (process.env.UV_THREADPOOL_SIZE !== "1") {
  const { spawnSync } = await import("node:child_process");
  const result = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, UV_THREADPOOL_SIZE: "1" },
  });
  process.exit(result.status ?? 1);
}

const modelPath = process.argv[2] ?? join(tmpdir(), "freehold-bench", "smol135m-q8_0-seed1.gguf");
const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";
const TOKENS = 64;
const RUNS = 3;
const nlc = await import("node-llama-cpp");
let next = 0;

async function generate(model: LlamaModel, sequence: LlamaContextSequence): Promise<number> {
  const tokens = model.tokenize(`${String.fromCharCode(65 + (next++ % 26))}. ${STORY}`, false);
  if (model.tokens.bos !== null) tokens.unshift(model.tokens.bos);
  await sequence.clearHistory();
  let generated = 0;
  let last = 0;
  for await (const token of sequence.evaluate(tokens, { temperature: 0, yieldEogToken: true })) {
    model.detokenize([token], false);
    last = performance.now();
    if (++generated >= TOKENS) break;
  }
  return last;
}

for (const threads of [1, 2]) {
  const llama = await nlc.getLlama({ gpu: false, logLevel: nlc.LlamaLogLevel.error, maxThreads: threads });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({
    contextSize: 2048,
    sequences: 4,
    threads: { ideal: threads, min: threads },
  });
  const sequences = Array.from({ length: 4 }, () => context.getSequence());
  const rates = new Map<number, number[]>([
    [1, []],
    [4, []],
  ]);
  for (let run = 0; run <= RUNS; run++) {
    for (const [streams, list] of rates) {
      const started = performance.now();
      const ends = await Promise.all(sequences.slice(0, streams).map((s) => generate(model, s)));
      if (run > 0) list.push((streams * TOKENS * 1000) / (Math.max(...ends) - started)); // run 0 warms up
    }
  }
  const [one, four] = [median(rates.get(1)!), median(rates.get(4)!)];
  console.log(
    `${threads} thread${threads === 1 ? "" : "s"}: 1 stream ${one.toFixed(1)} tok/s, 4 streams ${four.toFixed(1)} tok/s aggregate (${(four / one).toFixed(2)}×), median of ${RUNS}`,
  );
  await context.dispose();
  await model.dispose();
  await llama.dispose();
}
