import { availableParallelism } from "node:os";
import type { ModelSummary } from "../gguf/types.js";

/**
 * Threads per runner when not configured. Measured on 2-core machines (docs/threads.md): for tiny models the
 * per-token cost of waking a second thread outweighs the compute it saves, so they get one thread; bigger models
 * get the machine's cores.
 */
export function chooseThreads(summary: Pick<ModelSummary, "parameters">, cores = availableParallelism()): number {
  if (summary.parameters < 50_000_000) return 1;
  return Math.max(1, cores);
}
