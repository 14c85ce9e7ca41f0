import { readdirSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import type { ModelSummary } from "../gguf/types.js";

/**
 * Models below this many parameters decode on one thread; from it up, on every physical core (docs/threads.md).
 *
 * node-llama-cpp 3.21.1's prebuilt CPU binaries never attach a persistent ggml threadpool, so every decode with n
 * threads starts and joins n-1 threads, and their barriers busy-wait. On 2 cores that fixed cost reaches milliseconds
 * a decode (the new thread often starts on its creator's CPU and waits for a scheduler tick), which swamps a small
 * model's decode: stories260K takes 0.47 ms a token on one thread and 13 ms on two. It pays off once one thread's
 * decode takes several milliseconds: the 135M shape (8.8 ms a token) breaks even on one stream and gains on several at
 * once; the 1B shape (64 ms) decodes 1.5× faster on two (docs/threads.md, docs/benchmarks.md).
 */
export const ALL_CORES_FROM_PARAMETERS = 100_000_000;

/**
 * Threads per runner when not configured: every physical core for models of ALL_CORES_FROM_PARAMETERS or more (as
 * llama.cpp's own default), one for smaller models. FREEHOLD_THREADS / --threads / Ollama's num_thread override it.
 */
export function chooseThreads(summary: Pick<ModelSummary, "parameters">, cores = physicalCores()): number {
  if (summary.parameters < ALL_CORES_FROM_PARAMETERS) return 1;
  return Math.max(1, cores);
}

/**
 * Physical cores this process may use, counted as llama.cpp counts them (`cpu_get_num_physical_cores`): the distinct
 * sets of hardware threads that share a core (Linux sysfs `thread_siblings`), at most the CPUs this process may run
 * on. Hyper-threads share a core's arithmetic units, and a second spinning thread on one core only slows the first.
 * Where sysfs says nothing (macOS, Windows, containers that hide it): every CPU Node reports usable.
 */
export function physicalCores(
  usable = availableParallelism(),
  siblings: () => string[] | undefined = linuxThreadSiblings,
): number {
  const sets = siblings();
  if (!sets || sets.length === 0) return usable;
  return Math.max(1, Math.min(usable, new Set(sets).size));
}

function linuxThreadSiblings(): string[] | undefined {
  try {
    const root = "/sys/devices/system/cpu";
    return readdirSync(root)
      .filter((name) => /^cpu\d+$/.test(name))
      .map((name) => readFileSync(`${root}/${name}/topology/thread_siblings`, "utf8").trim());
  } catch {
    return undefined;
  }
}
