// The set-up the node-llama-cpp diagnostics share (bench/decodeCost.ts, bench/batchOrder.ts): the 1B shape (or the
// model named first on the command line) in a 4-sequence context on THREADS threads (default 2), CPU only.
import { readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Token } from "node-llama-cpp";

export async function loadDiagnosticContext() {
  const modelPath = process.argv[2] ?? join(tmpdir(), "freehold-bench", "llama1b-q8_0-seed1.gguf");
  const threads = Number(process.env.THREADS ?? 2);
  const nlc = await import("node-llama-cpp");
  const llama = await nlc.getLlama({ gpu: false, maxThreads: threads, logLevel: nlc.LlamaLogLevel.warn });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({
    contextSize: 2048,
    sequences: 4,
    threads: { ideal: threads, min: threads },
    batchSize: 512,
    flashAttention: "auto",
  });
  const dispose = async () => {
    await context.dispose();
    await model.dispose();
    await llama.dispose();
  };
  return { threads, context, dispose };
}

/** Made-up token ids (the cost does not depend on which). */
export function madeUpTokens(seed: number, count: number): Token[] {
  const out: number[] = [];
  let x = seed * 7919 + 13;
  while (out.length < count) {
    x = (x * 1103515245 + 12345) % 2147483648;
    out.push(((x >> 8) % 30000) + 1000);
  }
  return out as Token[];
}

export const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1] ?? Number.NaN;

export function loadAverage(): string {
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}
