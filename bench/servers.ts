// The HTTP servers of the concurrency and multi-turn modes, each started once per model and kept loaded:
// freehold at its own thread choice and at each other --threads count, and (with LLAMA_SERVER) llama-server at each
// --threads count with -np SLOTS and -c SLOTS × CONTEXT_SIZE, the same context per slot as freehold's.
import { rm } from "node:fs/promises";
import { prepareFreeholdHome, startFreehold } from "./freehold.js";
import { startLlamaServer } from "./llamaServer.js";
import { CONTEXT_SIZE, distinctPrompt, type ModelSpec, SLOTS } from "./models.js";
import type { Options } from "./options.js";
import { log } from "./processes.js";
import { type BenchSystem, systemLabel } from "./system.js";

/** Touches every slot once: SLOTS short generations at once (distinct prompts, none used by the timed runs). */
async function warmUp(system: BenchSystem): Promise<void> {
  await Promise.all(Array.from({ length: SLOTS }, (_, i) => system.run(distinctPrompt(26 * 25 + i), 8)));
}

export async function withServers<T>(
  spec: ModelSpec,
  options: Options,
  use: (systems: BenchSystem[], path: string) => Promise<T>,
): Promise<T> {
  const path = await spec.path();
  const home = await prepareFreeholdHome({ [spec.name]: path });
  const systems: BenchSystem[] = [];
  // One at a time: loading competes for the CPUs.
  const add = async (start: () => Promise<BenchSystem>) => {
    const system = await start();
    systems.push(system);
    await warmUp(system);
    log(`${spec.name} ${systemLabel(system)} (threads: ${system.threads ?? "?"}) started and warmed up`);
    return system;
  };
  try {
    const binary = options.llamaServer;
    if (options.engine === "llama-server") {
      // Engine against engine at the same thread counts: freehold auto (node-llama-cpp's choice) is left out.
      for (const threads of options.threads)
        await add(() =>
          startFreehold({
            home,
            model: spec.name,
            threads,
            contextSize: CONTEXT_SIZE,
            llamaServer: binary,
            logitBias: spec.llamaServerLogitBias,
          }),
        );
      for (const threads of options.threads)
        await add(() => startFreehold({ home, model: spec.name, threads, contextSize: CONTEXT_SIZE }));
    } else {
      const auto = await add(() => startFreehold({ home, model: spec.name, threads: 0, contextSize: CONTEXT_SIZE }));
      for (const threads of options.threads) {
        if (threads === auto.threads) continue; // the same configuration as freehold auto
        await add(() => startFreehold({ home, model: spec.name, threads, contextSize: CONTEXT_SIZE }));
      }
    }
    for (const threads of binary ? options.threads : []) {
      await add(() =>
        startLlamaServer({
          binary: binary!,
          modelPath: path,
          threads,
          contextSize: CONTEXT_SIZE * SLOTS,
          parallel: SLOTS,
          logitBias: spec.llamaServerLogitBias,
        }),
      );
    }
    return await use(systems, path);
  } finally {
    await Promise.all(systems.map((s) => s.close()));
    await rm(home, { recursive: true, force: true });
  }
}
