// Command-line flags of `npm run bench`, with each mode's defaults.
import { parseArgs } from "node:util";
import { type ModelSpec, models } from "./models.js";
import { log } from "./processes.js";

export type Mode = "single" | "concurrency" | "multiturn";

export interface Options {
  mode: Mode;
  models: ModelSpec[];
  /** Unset: the mode's (and in single mode the model's) default. */
  runs: number | undefined;
  tokens: number | undefined;
  threads: number[];
  streams: number[];
  turns: number;
  turnTokens: number;
  json: boolean;
  llamaServer: string | undefined;
  /** Single mode: a draft model (a models key) for each model; freehold with and without it (bench/draft.ts). */
  draft: ModelSpec | undefined;
  /** llama-server: freehold also runs on its llama-server engine (the LLAMA_SERVER binary) at each --threads count. */
  engine: "node-llama-cpp" | "llama-server";
}

const usage = `usage: npm run bench -- [--mode single|concurrency|multiturn] [--models stories,smol135m,llama1b] [--runs N]
                      [--tokens N] [--threads 1,2] [--streams 1,2,4,8] [--turns 10] [--turn-tokens 100] [--json]
                      [--draft stories|smol135m|llama1b]
                      [--engine node-llama-cpp|llama-server]
  --mode         single (default): one stream at a time, with node-llama-cpp called directly as well;
                 concurrency: N streams at once, aggregate and per-stream tok/s, TTFT p50/p95;
                 multiturn: a chat whose turns reuse the prompt cache, TTFT and cached tokens per turn
  --models       stories = stories260K, smol135m = synthetic 135M-shape q8_0, llama1b = synthetic Llama 3.2
                 1B-shape q8_0 (1.3 GB, made once into $TMPDIR/freehold-bench; minutes per run on 2 cores)
                 (default: stories,smol135m in single mode, smol135m in the others)
  --runs         timed runs per system (single: 5 for stories, 3 for smol135m and llama1b; concurrency and
                 multiturn: 3)
  --tokens       tokens per generation (single: 256 for stories, 128 for smol135m, 32 for llama1b; concurrency: 64;
                 multiturn: 16 per assistant answer)
  --threads      explicit thread counts for every engine, besides freehold's own choice (default 1,2; in the
                 concurrency and multiturn modes freehold skips the count its own choice already uses)
  --streams      concurrency: how many streams at once, one batch per count per run (default 1,2,4,8)
  --turns        multiturn: turns per chat (default 10)
  --turn-tokens  multiturn: about how many tokens each user message adds (default 100; calibrated on the model)
  --draft        single mode: speculative decoding with this draft model (stories, smol135m, llama1b) for each of
                 --models: freehold with the draft (a profile with "draft: …") against freehold without it, same prompts,
                 temperature 0; reports decode tok/s, speed-up, the draft's acceptance rate (/metrics) and whether
                 the answers are identical. The draft must share the model's vocabulary (freehold refuses others)
  --json         print one JSON document on stdout (the tables go to stderr)
  --engine       llama-server: freehold on its llama-server engine (FREEHOLD_ENGINE=llama-server on the LLAMA_SERVER
                 binary, needed) beside llama-server run directly and freehold on node-llama-cpp, all at each
                 --threads count (freehold auto is left out); ratio freehold/llama-server / llama-server (target
                 ≥ 0.97×). Default node-llama-cpp: freehold on node-llama-cpp only
env LLAMA_SERVER=/path/to/llama-server adds llama.cpp's server to the comparison (build it as docs/benchmarks.md says)

docs/benchmarks.md's issue-14 tables (1B shape; freehold at its default threads and at 1, llama-server at 1 and 2)
come from exactly these commands, run one after another on the shared development machine (load 17–27):
  LLAMA_SERVER=… npm run bench -- --mode concurrency --models llama1b --streams 1,4 --tokens 8 --runs 2 --threads 1,2
  LLAMA_SERVER=… npm run bench -- --mode multiturn --models llama1b --turns 10 --turn-tokens 30 --tokens 2 --runs 1 --threads 1
On a quieter machine, the same with more of everything (not run here: stories, 135M and 1B in all three modes):
  LLAMA_SERVER=… npm run bench -- --models llama1b,smol135m,stories --runs 3 --tokens 32 --threads 1,2
  LLAMA_SERVER=… npm run bench -- --mode concurrency --models llama1b,smol135m,stories --streams 1,4 --tokens 16 --runs 3 --threads 1,2
  LLAMA_SERVER=… npm run bench -- --mode multiturn --models llama1b,smol135m,stories --turns 10 --turn-tokens 50 --tokens 8 --runs 2 --threads 1,2`;

function positiveIntegers(value: string, flag: string): number[] {
  return value.split(",").map((part) => {
    const text = part.trim();
    const n = Number(text);
    if (!/^\d+$/.test(text) || n < 1) throw new Error(`${flag} must be positive integers, not "${value}"`);
    return n;
  });
}

function positiveInteger(value: string | undefined, flag: string): number | undefined {
  return value === undefined ? undefined : positiveIntegers(value, flag)[0];
}

export function parseOptions(): Options {
  const { values } = parseArgs({
    options: {
      mode: { type: "string", default: "single" },
      models: { type: "string" },
      runs: { type: "string" },
      tokens: { type: "string" },
      threads: { type: "string", default: "1,2" },
      streams: { type: "string", default: "1,2,4,8" },
      turns: { type: "string", default: "10" },
      "turn-tokens": { type: "string", default: "100" },
      json: { type: "boolean", default: false },
      draft: { type: "string" },
      engine: { type: "string", default: "node-llama-cpp" },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    log(usage);
    process.exit(0);
  }
  const mode = values.mode;
  if (mode !== "single" && mode !== "concurrency" && mode !== "multiturn")
    throw new Error(`--mode must be single, concurrency or multiturn, not "${mode}"`);
  const chosen = (values.models ?? (mode === "single" ? "stories,smol135m" : "smol135m"))
    .split(",")
    .map((m) => m.trim());
  const engine = values.engine;
  if (engine !== "node-llama-cpp" && engine !== "llama-server")
    throw new Error(`--engine must be node-llama-cpp or llama-server, not "${engine}"`);
  if (engine === "llama-server" && !process.env.LLAMA_SERVER)
    throw new Error(
      "--engine llama-server needs LLAMA_SERVER=/path/to/llama-server (freehold and the direct run share it)",
    );
  for (const m of chosen)
    if (!(m in models)) throw new Error(`unknown model "${m}"; choose from ${Object.keys(models).join(", ")}`);
  if (values.draft !== undefined && !(values.draft in models))
    throw new Error(`unknown draft model "${values.draft}"; choose from ${Object.keys(models).join(", ")}`);
  if (values.draft !== undefined && mode !== "single") throw new Error("--draft goes with --mode single");
  return {
    draft: values.draft === undefined ? undefined : models[values.draft],
    mode,
    models: chosen.map((m) => models[m]!),
    runs: positiveInteger(values.runs, "--runs"),
    tokens: positiveInteger(values.tokens, "--tokens"),
    threads: positiveIntegers(values.threads, "--threads"),
    streams: positiveIntegers(values.streams, "--streams"),
    turns: positiveInteger(values.turns, "--turns")!,
    turnTokens: positiveInteger(values["turn-tokens"], "--turn-tokens")!,
    json: values.json,
    llamaServer: process.env.LLAMA_SERVER || undefined,
    engine,
  };
}
