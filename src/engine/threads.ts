import { availableParallelism } from "node:os";
import type { ModelSummary } from "../gguf/types.js";

/**
 * Threads per runner when not configured (docs/threads.md has the measurements).
 *
 * node-llama-cpp 3.21.1's prebuilt CPU binaries are built without OpenMP and never attach a persistent ggml
 * threadpool, so every decode with n threads creates and joins n-1 fresh threads whose barrier busy-waits. On a
 * 2-core machine that made 2 threads 10-30x slower than 1 (stories260K: 76 vs 2,130 tok/s; a 135M q8_0 model:
 * 58 vs 112 tok/s), and the library's default (4 threads) ran at 1-2 tok/s. One thread per runner is the fast
 * choice there. With more cores a second thread has room to run, so bigger models get half the cores (capped);
 * that part is unmeasured here, and FREEHOLD_THREADS / --threads overrides it.
 */
export function chooseThreads(summary: Pick<ModelSummary, "parameters">, cores = availableParallelism()): number {
  if (cores <= 2) return 1;
  if (summary.parameters < 50_000_000) return 1;
  return Math.min(8, Math.max(1, Math.floor(cores / 2)));
}

/**
 * Threads per decode while several requests share it (the runner uses `chooseThreads` while one generates). On two
 * cores, models of 50M parameters or more get both: a batch of several sequences gives each barrier enough work,
 * measured +54% aggregate at 4 streams on a 135M q8_0 model (docs/benchmarks.md), while tiny models still collapse
 * with two threads and keep one. Elsewhere the same as chooseThreads.
 */
export function chooseBusyThreads(summary: Pick<ModelSummary, "parameters">, cores = availableParallelism()): number {
  if (cores === 2 && summary.parameters >= 50_000_000) return 2;
  return chooseThreads(summary, cores);
}
