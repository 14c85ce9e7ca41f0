// npm run bench -- [--models stories,smol135m] [--runs N] [--tokens N] [--threads 1,2] [--json]
//
// Single-stream decode speed and time to first token of freehold's HTTP API, side by side in one run with
// node-llama-cpp called directly and (when LLAMA_SERVER=/path/to/llama-server is set) llama.cpp's llama-server.
// Systems are interleaved run by run, so that noise from other work on the machine spreads over all of them.
// Progress goes to stderr and the tables to stdout; with --json, stdout is one JSON document and the tables go to stderr.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs, promisify } from "node:util";
import { prepareFreeholdHome, startFreehold } from "./freehold.js";
import { startLlamaServer } from "./llamaServer.js";
import { startNodeLlamaCpp } from "./nodeLlamaCpp.js";
import { installCleanup, projectRoot, stopAll } from "./processes.js";
import { formatModel, type ModelResult, ratios, type SystemResult, spread } from "./report.js";
import type { Sample } from "./sse.js";
import { type BenchSystem, systemLabel } from "./system.js";

const CONTEXT_SIZE = 2048;
const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";

/**
 * The prompt of run `index` (-1 for the warm-up): the same story behind a different capital letter, so that no run
 * starts with the previous run's tokens. freehold reuses a slot's cached prefix (it reports cached_tokens); a new
 * first letter makes every system evaluate the whole prompt (at most BOS and a leading-space token are shared), so
 * TTFT compares prompt evaluation, not cache hits. Every system gets the same prompt in the same run.
 */
function prompt(index: number): string {
  return `${String.fromCharCode(65 + ((index + 26) % 26))}. ${STORY}`;
}

interface ModelSpec {
  /** The name it is imported under in freehold. */
  name: string;
  tokens: number;
  runs: number;
  path: () => Promise<string>;
}

const models: Record<string, ModelSpec> = {
  stories: {
    name: "stories",
    tokens: 256,
    runs: 5,
    path: async () => {
      const path = resolve(projectRoot, "../shared/models/stories260K.gguf");
      if (!existsSync(path)) throw new Error(`${path} is missing (see ../shared/models/README.md)`);
      return path;
    },
  },
  smol135m: {
    name: "smol135m",
    tokens: 128,
    runs: 3,
    path: async () => {
      // Synthetic weights, SmolLM-135M's shapes; made once and cached (same seed, same bytes).
      const directory = join(tmpdir(), "freehold-bench");
      const path = join(directory, "smol135m-q8_0-seed1.gguf");
      if (existsSync(path)) return path;
      await mkdir(directory, { recursive: true });
      const partial = `${path}.${process.pid}.partial.gguf`;
      log(`making ${path} (freehold synth --preset smol135m --quant q8_0 --seed 1)`);
      try {
        await promisify(execFile)(
          process.execPath,
          [
            "--import",
            "tsx",
            "src/cli/entry.ts",
            "synth",
            "--preset",
            "smol135m",
            "--quant",
            "q8_0",
            "--seed",
            "1",
            partial,
          ],
          { cwd: projectRoot },
        );
        await rename(partial, path);
      } finally {
        await rm(partial, { force: true });
      }
      return path;
    },
  },
};

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function positiveInteger(value: string, flag: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1) throw new Error(`${flag} must be a positive integer, not "${value}"`);
  return n;
}

function parseOptions() {
  const { values } = parseArgs({
    options: {
      models: { type: "string", default: "stories,smol135m" },
      runs: { type: "string" },
      tokens: { type: "string" },
      threads: { type: "string", default: "1,2" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    log(
      [
        "usage: npm run bench -- [--models stories,smol135m] [--runs N] [--tokens N] [--threads 1,2] [--json]",
        "  --models   which models (stories = stories260K, smol135m = synthetic 135M-shape q8_0)",
        "  --runs     timed runs per system (default 5 for stories, 3 for smol135m), after one warm-up",
        "  --tokens   tokens to generate per run (default 256 for stories, 128 for smol135m)",
        "  --threads  explicit thread counts to measure for every engine (freehold also runs at its own choice)",
        "  --json     print one JSON document on stdout (the tables go to stderr)",
        "env LLAMA_SERVER=/path/to/llama-server adds llama.cpp's server to the comparison",
      ].join("\n"),
    );
    process.exit(0);
  }
  const chosen = values.models.split(",").map((m) => m.trim());
  for (const m of chosen)
    if (!(m in models)) throw new Error(`unknown model "${m}"; choose from ${Object.keys(models).join(", ")}`);
  return {
    models: chosen.map((m) => models[m]!),
    runs: values.runs === undefined ? undefined : positiveInteger(values.runs, "--runs"),
    tokens: values.tokens === undefined ? undefined : positiveInteger(values.tokens, "--tokens"),
    threads: values.threads.split(",").map((t) => positiveInteger(t.trim(), "--threads")),
    json: values.json,
    llamaServer: process.env.LLAMA_SERVER || undefined,
  };
}

type Options = ReturnType<typeof parseOptions>;

function describe(sample: Sample): string {
  return `${sample.decodeTokensPerSecond.toFixed(1)} tok/s, TTFT ${sample.ttftMs.toFixed(1)} ms (${sample.completionTokens} tokens, ${sample.textChunks} chunks)`;
}

async function benchModel(spec: ModelSpec, options: Options): Promise<ModelResult> {
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
      ...options.threads.map(
        (threads) => () => startNodeLlamaCpp({ modelPath: path, threads, contextSize: CONTEXT_SIZE }),
      ),
      ...(options.llamaServer
        ? options.threads.map(
            (threads) => () =>
              startLlamaServer({ binary: options.llamaServer!, modelPath: path, threads, contextSize: CONTEXT_SIZE }),
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

async function main(): Promise<void> {
  installCleanup();
  const options = parseOptions();
  if (!options.llamaServer) log("LLAMA_SERVER is not set: comparing with node-llama-cpp only");
  else if (!existsSync(options.llamaServer)) throw new Error(`LLAMA_SERVER=${options.llamaServer} does not exist`);
  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: availableParallelism(),
    node: process.version,
    loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  };
  log(
    `${machine.cores} cores (${machine.cpu}), Node ${machine.node}, load average ${machine.loadAverageAtStart.join(" ")}`,
  );
  const results: ModelResult[] = [];
  for (const spec of options.models) results.push(await benchModel(spec, options));
  const loadAverageAtEnd = loadavg().map((l) => Number(l.toFixed(2)));
  const summary = [
    `${machine.cores} cores (${machine.cpu}), Node ${machine.node}; load average ${machine.loadAverageAtStart.join(" ")} at start, ${loadAverageAtEnd.join(" ")} at end\n`,
    ...results.map(formatModel),
  ].join("\n");
  if (options.json) {
    // The tables still go to stderr for whoever watches; stdout is one JSON document.
    log(`\n${summary}`);
    const settings = {
      prompt: prompt(0),
      promptNote: "the first letter changes per run (A, B, C, …; Z for the warm-up)",
      contextSize: CONTEXT_SIZE,
      threads: options.threads,
      llamaServer: options.llamaServer ?? null,
    };
    process.stdout.write(
      `${JSON.stringify({ machine: { ...machine, loadAverageAtEnd }, settings, models: results }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(summary);
  }
}

main().catch(async (error: unknown) => {
  log(`bench failed: ${(error as Error)?.stack ?? String(error)}`);
  await stopAll();
  process.exit(1);
});
