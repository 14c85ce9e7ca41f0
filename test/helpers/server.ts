import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { runCli } from "./cli.js";
import { projectRoot, temporaryDirectory } from "./paths.js";

export interface ServerProcess {
  url: string;
  home: string;
  child: ChildProcess;
  output(): string;
  /** Sends a signal and waits for the process to exit; returns its exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  dispose(): Promise<void>;
}

/**
 * Starts `freehold serve` as a person would, on a free loopback port, with its own FREEHOLD_HOME.
 * `models` are imported first (name → GGUF path).
 */
export async function startServerProcess(
  options: {
    models?: Record<string, string>;
    args?: string[];
    env?: NodeJS.ProcessEnv;
    /** Leave the port to the environment (FREEHOLD_HOST/FREEHOLD_PORT) instead of passing --port 0. */
    portFromEnvironment?: boolean;
  } = {},
): Promise<ServerProcess> {
  const directory = temporaryDirectory("freehold-server-");
  const env = { ...process.env, FREEHOLD_HOME: directory.path, FREEHOLD_LOG_LEVEL: "warn", ...options.env };
  for (const [name, path] of Object.entries(options.models ?? {})) {
    const result = await runCli(["import", path, "--name", name], { env });
    if (result.code !== 0) throw new Error(`import failed: ${result.stderr}`);
  }
  const child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      resolve(projectRoot, "src/cli/entry.ts"),
      "serve",
      ...(options.portFromEnvironment ? [] : ["--port", "0"]),
      ...(options.args ?? []),
    ],
    { cwd: projectRoot, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  child.stdout?.on("data", (chunk) => {
    output += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolvePromise) => child.on("exit", (code) => resolvePromise(code)));
  const url = await new Promise<string>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in time:\n${output}`)), 60_000);
    const check = () => {
      const match = /listening on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolvePromise(match[1]!);
      }
    };
    child.stdout?.on("data", check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${output}`));
    });
  });
  let stopped: Promise<number | null> | undefined;
  const stop = (signal: NodeJS.Signals = "SIGTERM") => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    stopped ??= exited;
    return stopped;
  };
  return {
    url,
    home: directory.path,
    child,
    output: () => output,
    stop,
    async dispose() {
      await stop("SIGTERM");
      directory.dispose();
    },
  };
}

/** Reads an SSE response into its `data:` payloads. */
export async function readSse(response: Response): Promise<string[]> {
  const text = await response.text();
  return text
    .split("\n\n")
    .map((frame) => frame.trim())
    .filter((frame) => frame.startsWith("data: "))
    .map((frame) => frame.slice("data: ".length));
}

export function postJson(url: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...(init.headers ?? {}) },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(init.signal ? { signal: init.signal } : {}),
  });
}
