// The models the benchmark runs, and the prompts of the completion modes.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { log, projectRoot } from "./processes.js";

/** freehold's --context-size (per slot), and llama-server's -c in single mode. */
export const CONTEXT_SIZE = 2048;
/** freehold's default slots per model; llama-server gets -np SLOTS -c SLOTS × CONTEXT_SIZE in the other modes. */
export const SLOTS = 4;

const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.";

/**
 * The prompt of run `index` (-1 for the warm-up): the same story behind a different capital letter, so that no run
 * starts with the previous run's tokens. freehold reuses a slot's cached prefix (it reports cached_tokens); a new
 * first letter makes every system evaluate the whole prompt (at most BOS and a leading-space token are shared), so
 * TTFT compares prompt evaluation, not cache hits. Every system gets the same prompt in the same run.
 */
export function prompt(index: number): string {
  return `${String.fromCharCode(65 + ((index + 26) % 26))}. ${STORY}`;
}

/**
 * A distinct prompt for request `index` of the concurrency mode: two letters, the first changing fastest, so that
 * no prompt begins like one of the last 25 (which may still sit in a slot's cache).
 */
export function distinctPrompt(index: number): string {
  const letter = (n: number) => String.fromCharCode(65 + (n % 26));
  return `${letter(index)}${letter(Math.floor(index / 26)).toLowerCase()}. ${STORY}`;
}

export interface ModelSpec {
  /** The name it is imported under in freehold. */
  name: string;
  /** Single-stream mode's defaults. */
  tokens: number;
  runs: number;
  path: () => Promise<string>;
  /**
   * Sent to llama-server only: tokens it must not generate. The synthetic vocabulary's byte tokens 0x80–0xFF (ids
   * 133–260: five specials, then bytes 0x00–0xFF) decode alone to invalid UTF-8, on which llama-server 80fb11a fails a
   * request with "The model produced output that does not match the expected Content-only format" (HTTP 500).
   * Banning them changes which tokens come out, not how many nor what each costs.
   */
  llamaServerLogitBias?: Record<string, number>;
}

export const models: Record<string, ModelSpec> = {
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
    llamaServerLogitBias: syntheticByteTokensBanned(),
    path: () => synthesized("smol135m"),
  },
  // Llama 3.2 1B's shapes, 1.3 GB: what a real small model costs per token. A run takes minutes on 2 cores.
  llama1b: {
    name: "llama1b",
    tokens: 32,
    runs: 3,
    llamaServerLogitBias: syntheticByteTokensBanned(),
    path: () => synthesized("llama1b"),
  },
  // llama1b's first 2 layers (same embeddings and output): a draft for it (`--draft llama1b-draft`) that always agrees
  // with it on random weights, so it measures the speculative machinery at full acceptance.
  "llama1b-draft": {
    name: "llama1b-draft",
    tokens: 64,
    runs: 3,
    llamaServerLogitBias: syntheticByteTokensBanned(),
    path: () => synthesized("llama1b-draft"),
  },
};

/** See ModelSpec.llamaServerLogitBias: every synthetic preset shares the vocabulary's first 261 ids. */
function syntheticByteTokensBanned(): Record<string, number> {
  return Object.fromEntries(Array.from({ length: 128 }, (_, i) => [String(133 + i), -100]));
}

/** A synthetic model in q8_0, seed 1, made once and cached in $TMPDIR/freehold-bench (same seed, same bytes). */
async function synthesized(preset: "smol135m" | "llama1b" | "llama1b-draft"): Promise<string> {
  const directory = join(tmpdir(), "freehold-bench");
  const path = join(directory, `${preset}-q8_0-seed1.gguf`);
  if (existsSync(path)) return path;
  await mkdir(directory, { recursive: true });
  const partial = `${path}.${process.pid}.partial.gguf`;
  log(`making ${path} (freehold synth --preset ${preset} --quant q8_0 --seed 1)`);
  const args = ["synth", "--preset", preset, "--quant", "q8_0", "--seed", "1", partial];
  try {
    await promisify(execFile)(process.execPath, ["--import", "tsx", "src/cli/entry.ts", ...args], {
      cwd: projectRoot,
    });
    await rename(partial, path);
  } finally {
    await rm(partial, { force: true });
  }
  return path;
}
