// Single-stream mode: one generation at a time per system, freehold beside node-llama-cpp called directly and
// llama-server, interleaved run by run.
import { rm } from "node:fs/promises";
import { prepareFreeholdHome, startFreehold } from "./freehold.js";
import { startLlamaServer } from "./llamaServer.js";
import { CONTEXT_SIZE, type ModelSpec, prompt } from "./models.js";
import { startNodeLlamaCpp } from "./nodeLlamaCpp.js";
import type { Options } from "./options.js";
import { log } from "./processes.js";
import { type ModelResult, ratios, type SystemResult, spread } from "./report.js";
import type { Sample } from "./sse.js";
import { type BenchSystem, systemLabel } from "./system.js";

export function describe(sample: Sample): string {
  return `${sample.decodeTokensPerSecond.toFixed(1)} tok/s, TTFT ${sample.ttftMs.toFixed(1)} ms (${sample.completionTokens} tokens, ${sample.textChunks} chunks)`;
}

export async function benchSingle(spec: ModelSpec, options: Options): Promise<ModelResult> {
  const path = await spec.path();
  const tokens = options.tokens ?? spec.tokens;
  const runs = options.runs ?? spec.runs;
  const home = await prepareFreeholdHome({ [spec.name]: path });
  const systems: BenchSystem[] = [];
  const samples = new Map<BenchSystem, Sample[]>();
  try {
    // Start one system at a time (loading competes for the CPUs), and warm each with one untimed run.
    const starters: (() => Promise<BenchSystem>)[] = [
      () => startFreehold({ home, model: spec.name, threads: 0, contextSize: CONTEXT_SIZE }),
      ...options.threads.map(
        (threads) => () => startFreehold({ home, model: spec.name, threads, contextSize: CONTEXT_SIZE }),
      ),
      ...(options.engine === "llama-server"
        ? options.threads.map(
            (threads) => () =>
              startFreehold({
                home,
                model: spec.name,
                threads,
                contextSize: CONTEXT_SIZE,
                llamaServer: options.llamaServer,
                logitBias: spec.llamaServerLogitBias,
              }),
          )
        : []),
      ...options.threads.map(
        (threads) => () => startNodeLlamaCpp({ modelPath: path, threads, contextSize: CONTEXT_SIZE }),
      ),
      ...(options.llamaServer
        ? options.threads.map(
            (threads) => () =>
              startLlamaServer({
                binary: options.llamaServer!,
                modelPath: path,
                threads,
                contextSize: CONTEXT_SIZE,
                logitBias: spec.llamaServerLogitBias,
              }),
          )
        : []),
    ];
    for (const start of starters) {
      const system = await start();
      systems.push(system);
      samples.set(system, []);
      const warm = await system.run(prompt(-1), tokens);
      log(`${spec.name} ${systemLabel(system)} (threads: ${system.threads ?? "?"}) warm-up: ${describe(warm)}`);
    }
    for (let run = 0; run < runs; run++) {
      // Rotate the order each run, so that no system always goes first or always follows the same one.
      const order = systems.map((_, i) => systems[(i + run) % systems.length]!);
      for (const system of order) {
        const sample = await system.run(prompt(run), tokens);
        if (sample.completionTokens !== tokens)
          log(`warning: ${systemLabel(system)} generated ${sample.completionTokens} tokens, not ${tokens}`);
        // A shared BOS and leading-space token or two is expected; more means a cache hit changed the TTFT.
        if ((sample.cachedTokens ?? 0) > 2)
          log(
            `warning: ${systemLabel(system)} reused ${sample.cachedTokens} cached prompt tokens: its TTFT is not cold`,
          );
        samples.get(system)!.push(sample);
        log(`${spec.name} run ${run + 1}/${runs} ${systemLabel(system)}: ${describe(sample)}`);
      }
    }
  } finally {
    await Promise.all(systems.map((s) => s.close()));
    await rm(home, { recursive: true, force: true });
  }
  const results: SystemResult[] = systems.map((system) => {
    const list = samples.get(system)!;
    return {
      label: systemLabel(system),
      engine: system.engine,
      requested: system.requested,
      threads: system.threads,
      decodeTokensPerSecond: spread(list.map((s) => s.decodeTokensPerSecond)),
      ttftMs: spread(list.map((s) => s.ttftMs)),
      samples: list,
    };
  });
  const promptTokens = results.find((r) => r.engine === "freehold")?.samples[0]?.promptTokens;
  return { model: spec.name, path, tokens, runs, promptTokens, systems: results, ratios: ratios(results) };
}
