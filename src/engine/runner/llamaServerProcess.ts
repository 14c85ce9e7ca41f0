/**
 * Starting and stopping llama-server for the llama-server engine. It listens on a Unix socket inside a fresh 0700
 * directory (llama-server binds a Unix socket when its --host ends in .sock), not on a TCP port: a loopback port is
 * reachable by every local user and process, the socket only by this user, and each request also carries a random key
 * (--api-key-file, 0600 in that directory).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { requestError } from "./errors.js";
import { LlamaServerClient } from "./llamaServerClient.js";

export interface ServerProcess {
  child: ChildProcess;
  client: LlamaServerClient;
  directory: string;
  /** The last of what llama-server wrote to stderr (why a load failed, what it said before dying). */
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts llama-server on a private socket and waits until it answers /health (or dies, with its reason). */
export async function startServer(binary: string, args: string[], timeoutMs = 600_000): Promise<ServerProcess> {
  const directory = mkdtempSync(join(tmpdir(), "freehold-llama-"));
  const socket = join(directory, "server.sock");
  const apiKey = randomBytes(24).toString("hex");
  writeFileSync(join(directory, "key"), apiKey, { mode: 0o600 });
  const child = spawn(
    binary,
    [...args, "--host", socket, "--api-key-file", join(directory, "key"), "--no-webui", "--log-verbosity", "2"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let tail = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    tail = (tail + chunk).slice(-8000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
    child.on("error", (error) => {
      tail += `\n${error.message}`;
      resolve({ code: -1, signal: null });
    });
  });
  const client = new LlamaServerClient(socket, apiKey);
  const server: ServerProcess = { child, client, directory, stderr: () => tail, exited };
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  for (;;) {
    if (gone) {
      rmSync(directory, { recursive: true, force: true });
      const { code, signal } = await exited;
      const lines = tail
        .split("\n")
        .filter((line) => /error|fail|unknown|invalid|unsupported|missing/i.test(line))
        .slice(-4)
        .map((line) => line.trim());
      throw requestError(
        `llama-server could not load the model (${signal ? `signal ${signal}` : `exit code ${code}`}): ${lines.join("; ") || tail.trim().split("\n").slice(-3).join("; ")}`,
        "model_load_failed",
        500,
      );
    }
    try {
      await client.json("GET", "/health");
      return server;
    } catch {
      // Not listening yet, or 503 while loading.
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      rmSync(directory, { recursive: true, force: true });
      throw requestError("llama-server did not become ready in time", "model_load_failed", 500);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Stops one llama-server: SIGTERM, SIGKILL after 2 s if it is still there, then its private directory goes. */
export async function stopServer(running: ServerProcess): Promise<void> {
  running.child.kill("SIGTERM");
  const timer = setTimeout(() => running.child.kill("SIGKILL"), 2000);
  await running.exited;
  clearTimeout(timer);
  rmSync(running.directory, { recursive: true, force: true });
}

/**
 * A second llama-server on the model's file, for a mode the generation server cannot serve (embeddings, reranking):
 * one slot whose context and batch are `contextSize` (an input is evaluated in one batch), its pid reported for the
 * server to kill if the runner is killed outright, and the runner exits (code 70: runner_crashed) if it stops
 * unexpectedly, as for the generation server.
 */
export function startCompanionServer(options: {
  binary: string;
  /** The model, thread and memory arguments every server of the model shares. */
  common: string[];
  contextSize: number;
  /** The mode's own arguments (`--embeddings --pooling mean`, `--reranking`). */
  mode: string[];
  /** What it is for, in the crash message. */
  role: string;
  onStarted: (pid: number) => void;
  disposing: () => boolean;
}): Promise<ServerProcess> {
  const size = String(options.contextSize);
  return startServer(options.binary, [
    ...options.common,
    ...["-c", size, "-np", "1", "-b", size, "-ub", size],
    ...options.mode,
  ]).then((started) => {
    if (started.child.pid !== undefined) options.onStarted(started.child.pid);
    void started.exited.then(({ code, signal }) => {
      if (options.disposing()) return;
      process.stderr.write(`llama-server (${options.role}) stopped unexpectedly (${signal ?? `exit code ${code}`})\n`);
      process.exit(70);
    });
    return started;
  });
}
