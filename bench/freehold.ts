// freehold as people run it: `freehold serve` in a child process, timed through its OpenAI-compatible HTTP API.
import { execFile } from "node:child_process";
import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Child, projectRoot } from "./processes.js";
import { timedChat, timedCompletion } from "./sse.js";
import type { BenchSystem } from "./system.js";

const run = promisify(execFile);
const cli = ["--import", "tsx", join(projectRoot, "src/cli/entry.ts")];

/** A fresh FREEHOLD_HOME with `models` (name → GGUF path) imported through the CLI. */
export async function prepareFreeholdHome(models: Record<string, string>): Promise<string> {
  const home = await mkdtemp(join(tmpdir(), "freehold-bench-home-"));
  for (const [name, path] of Object.entries(models)) {
    await run(process.execPath, [...cli, "import", path, "--name", name, "--link"], {
      cwd: projectRoot,
      env: { ...process.env, FREEHOLD_HOME: home },
    });
  }
  return home;
}

/** Creates a profile `name` from YAML in `home` (freehold create -f), as a person would. */
export async function createProfile(home: string, name: string, yaml: string): Promise<void> {
  const file = join(home, `${name}.profile.yaml`);
  await writeFile(file, yaml);
  await run(process.execPath, [...cli, "create", name, "-f", file], {
    cwd: projectRoot,
    env: { ...process.env, FREEHOLD_HOME: home },
  });
}

/** Starts `freehold serve` on a free port; `threads` 0 lets freehold choose per model. */
export async function startFreehold(options: {
  home: string;
  model: string;
  threads: number;
  contextSize: number;
  /** A llama-server binary: freehold then runs with FREEHOLD_ENGINE=llama-server on it. Unset: node-llama-cpp. */
  llamaServer?: string | undefined;
  /** logit_bias for every request (on the llama-server engine: see ModelSpec.llamaServerLogitBias). */
  logitBias?: Record<string, number> | undefined;
}): Promise<BenchSystem> {
  const engineEnv = options.llamaServer
    ? { FREEHOLD_ENGINE: "llama-server", FREEHOLD_LLAMA_SERVER: options.llamaServer }
    : { FREEHOLD_ENGINE: "node-llama-cpp" };
  const bias = options.logitBias ? { logit_bias: options.logitBias } : {};
  const child = new Child(
    process.execPath,
    [
      ...cli,
      "serve",
      "--port",
      "0",
      "--no-demo",
      "--threads",
      String(options.threads),
      "--keep-alive",
      "-1",
      "--context-size",
      String(options.contextSize),
      "--drain-timeout",
      "0",
    ],
    { cwd: projectRoot, env: { ...process.env, ...engineEnv, FREEHOLD_HOME: options.home } },
  );
  let url: string;
  try {
    const listening = await child.waitFor(/freehold is listening on (http:\/\/\S+)/, "freehold serve");
    url = listening[1]!;
  } catch (error) {
    await child.stop();
    throw error;
  }
  const system: BenchSystem = {
    engine: options.llamaServer ? "freehold/llama-server" : "freehold",
    requested: options.threads === 0 ? "auto" : options.threads,
    threads: undefined,
    url,
    async run(prompt, tokens) {
      const sample = await timedCompletion(url, {
        model: options.model,
        prompt,
        max_tokens: tokens,
        temperature: 0,
        ignore_eos: true,
        ...bias,
        stream: true,
        stream_options: { include_usage: true },
      });
      if (system.threads === undefined) {
        // Logged once, when the first request loads the model: a JSON line with "msg":"model loaded" and its threads.
        const loaded = await child.waitFor(/^\{.*"msg":"model loaded".*\}$/m, "freehold model load", 5_000);
        system.threads = (JSON.parse(loaded[0]) as { threads: number }).threads;
      }
      return sample;
    },
    chat: (messages, tokens) =>
      timedChat(url, {
        model: options.model,
        messages,
        max_tokens: tokens,
        temperature: 0,
        ignore_eos: true,
        ...bias,
        stream: true,
        stream_options: { include_usage: true },
      }),
    close: () => child.stop(),
  };
  return system;
}
