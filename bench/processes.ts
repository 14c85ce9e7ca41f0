// Child processes started by the benchmark: every one is registered here, so that they are all stopped when the
// benchmark ends, fails or is interrupted.
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

export const projectRoot = fileURLToPath(new URL("..", import.meta.url));

const children = new Set<ChildProcess>();

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Registers a child so that it is stopped when the benchmark exits. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** A child process whose stdout and stderr are collected (the last 20 KB) and can be waited on for a line. */
export class Child {
  readonly process: ChildProcess;
  private output = "";
  private readonly listeners = new Set<() => void>();

  constructor(command: string, args: string[], options: SpawnOptions = {}) {
    this.process = track(spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"] }));
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString("utf8")).slice(-20_000);
      for (const listener of this.listeners) listener();
    };
    this.process.stdout?.on("data", collect);
    this.process.stderr?.on("data", collect);
  }

  tail(lines = 15): string {
    return this.output.trimEnd().split("\n").slice(-lines).join("\n");
  }

  /** Resolves with the first match of `pattern` in the output; rejects if the process exits or time runs out. */
  waitFor(pattern: RegExp, what: string, timeoutMs = 120_000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
        this.process.off("exit", exited);
      };
      const check = () => {
        const match = pattern.exec(this.output);
        if (match) {
          done();
          resolve(match);
        }
      };
      const exited = () => {
        done();
        reject(
          new Error(
            `${what}: the process exited (${this.process.exitCode ?? this.process.signalCode})\n${this.tail()}`,
          ),
        );
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${what}: timed out after ${timeoutMs} ms\n${this.tail()}`));
      }, timeoutMs);
      this.listeners.add(check);
      this.process.on("exit", exited);
      check();
    });
  }

  stop(): Promise<void> {
    return stopProcess(this.process);
  }
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. */
export async function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (!alive(child)) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => {
    if (alive(child)) child.kill("SIGKILL");
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((child) => stopProcess(child)));
}

let installed = false;
/** Stops every tracked child on exit, on Ctrl-C and on SIGTERM. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on("exit", () => {
    for (const child of children) if (alive(child)) child.kill("SIGTERM");
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping child processes\n`);
      void stopAll().finally(() => process.exit(130));
    });
  }
}

/** A free loopback TCP port (for programs that cannot be told to pick one and report it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("could not find a free port");
  return address.port;
}

/** Progress goes to stderr (stdout carries the tables or the JSON document). */
export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}
