// node --import tsx bench/decodeSteps.ts [model.gguf] [streams] [tokens]   (THREADS=n, default 1; RUNS=n, default 3)
//
// A diagnostic for concurrent decoding inside one runner (no HTTP, no IPC): loads the model with freehold's runner
// code (src/engine/runner/runnerModel.ts), generates `tokens` tokens on `streams` requests at once, three times, and
// counts the llama_decode calls node-llama-cpp made. When every step decodes one token of every stream, decodes =
// tokens + 1 or so (the prompts, then one step per token); a stream that misses a step shows as more decodes.
import { resolve } from "node:path";
import { loadRunnerModel } from "../src/engine/runner/runnerModel.js";
import { countDecodes } from "../test/helpers/decodeCounter.js";

if (process.env.UV_THREADPOOL_SIZE !== "1") {
  // As freehold starts its runners.
  const { spawnSync } = await import("node:child_process");
  const result = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: "inherit",
    env: { ...process.env, UV_THREADPOOL_SIZE: "1" },
  });
  process.exit(result.status ?? 1);
}

const modelPath = resolve(process.argv[2] ?? "../shared/models/stories260K.gguf");
const streams = Number(process.argv[3] ?? 4);
const tokens = Number(process.argv[4] ?? 64);
const threads = Number(process.env.THREADS ?? 1);
const counts = await countDecodes();
const model = await loadRunnerModel({
  paths: [modelPath],
  contextSize: 2048,
  threads,
  sequences: 4,
  kvCacheType: "f16",
  flashAttention: "auto",
  batchSize: 512,
  gpuLayers: 0,
  flushIntervalMs: 4,
});
const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";
async function one(index: number): Promise<void> {
  await model.generate(
    {
      model: "diagnostic",
      kind: "completion",
      prompt: `${String.fromCharCode(65 + (index % 26))}. ${STORY}`,
      sampling: { temperature: 0 },
      limits: { maxTokens: tokens, ignoreEos: true },
    },
    new AbortController().signal,
    () => {},
  );
}
for (let run = 0; run < Number(process.env.RUNS ?? 3); run++) {
  counts.reset();
  const started = performance.now();
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: streams }, (_, i) => one(run * streams + i)));
  const ms = performance.now() - started;
  // CPU time is what a busy shared machine does not distort much: at one thread, the work the batches took.
  const used = process.cpuUsage(cpu);
  const cpuMs = (used.user + used.system) / 1000;
  console.log(
    `run ${run + 1}: ${streams} streams × ${tokens} tokens, ${threads} thread(s), in ${ms.toFixed(0)} ms (${((streams * tokens * 1000) / ms).toFixed(1)} tok/s): ${counts.decodes} decodes of ${(counts.tokens / counts.decodes).toFixed(2)} tokens on average; ${counts.decodeMs.toFixed(0)} ms decoding, ${counts.sampleMs.toFixed(0)} ms sampling; ${cpuMs.toFixed(0)} ms CPU (${(cpuMs / (streams * tokens)).toFixed(1)} ms a token)`,
  );
}
await model.dispose();
