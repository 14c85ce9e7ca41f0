import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Channel } from "../core/channel.js";
import type { ChatEvent } from "../core/chat.js";
import { errorFromEvent, type FreeholdError, ServerError } from "../core/errors.js";
import type {
  ErrorPayload,
  LoadedInfo,
  LoadOptions,
  ParentMessage,
  RunnerMessage,
  RunnerRequest,
} from "./runner/protocol.js";

export type RunnerState = "starting" | "loading" | "ready" | "crashed" | "stopped";

export interface RunnerStartOptions {
  load: LoadOptions;
  /** Extra environment for the child (set before node-llama-cpp loads, e.g. UV_THREADPOOL_SIZE). */
  env: NodeJS.ProcessEnv;
  /** Called once when the process exits for any reason. */
  onExit?: (detail: { code: number | null; signal: NodeJS.Signals | null; expected: boolean }) => void;
  /** What clients are not told (the runner's stderr, llama.cpp's reasons, unexpected exceptions): for the server log. */
  onDiagnostic?: (diagnostic: RunnerDiagnostic) => void;
  /** The runner's entry point (tests: a stand-in script); default the real runner. */
  entry?: { path: string; execArgv: string[] };
}

export interface RunnerDiagnostic {
  kind: "crashed" | "load-failed" | "request-failed" | "start-failed";
  /** The full message (may name files on the server). */
  message: string;
  /** The last lines the runner wrote to stderr, when it stopped. */
  stderr?: string;
}

/**
 * Client-facing text for an error a runner reported. Errors the runner raised on purpose (model_load_failed, prompt
 * too long…) keep their message (the HTTP edge still strips file paths); anything else was an unexpected exception
 * inside node-llama-cpp or llama.cpp, whose message is internal: the client gets a stable one, the log the rest.
 */
function clientPayload(payload: ErrorPayload): ErrorPayload {
  if (payload.code !== "runner_error") return payload;
  return {
    ...payload,
    message: "the model runner failed on this request (runner_error); the server log has the details",
  };
}

function errorFromPayload(received: ErrorPayload): FreeholdError {
  return errorFromEvent(clientPayload(received));
}

/** Where the runner's entry point is: compiled JS next to us, or the TypeScript source when running under tsx. */
function runnerEntry(): { path: string; execArgv: string[] } {
  const fromSource = import.meta.url.endsWith(".ts");
  const url = new URL(fromSource ? "./runner/main.ts" : "./runner/main.js", import.meta.url);
  return { path: fileURLToPath(url), execArgv: fromSource ? ["--import", "tsx"] : [] };
}

interface PendingRequest {
  channel?: Channel<ChatEvent>;
  resolveCount?: (tokens: number) => void;
  resolveEmbedding?: (value: { vectors: number[][]; promptTokens: number }) => void;
  resolveRank?: (value: { scores: number[]; promptTokens: number }) => void;
  reject?: (error: unknown) => void;
}

/**
 * One runner child process hosting one model, seen from the server. Requests are multiplexed by id; a crash fails
 * every in-flight request with a clear error, and the owner (the engine) decides when to start a new one.
 */
export class RunnerProcess {
  state: RunnerState = "starting";
  info: LoadedInfo | undefined;
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, PendingRequest>();
  private nextId = 1;
  private stopping = false;
  private stderrTail = "";
  private readonly onDiagnostic: RunnerStartOptions["onDiagnostic"];
  private readonly loaded: Promise<LoadedInfo>;

  private constructor(options: RunnerStartOptions) {
    const entry = options.entry ?? runnerEntry();
    this.onDiagnostic = options.onDiagnostic;
    this.child = fork(entry.path, [], {
      execArgv: entry.execArgv,
      env: options.env,
      serialization: "advanced",
      // Anything the native code prints goes to our stderr: our stdout may be a protocol (`freehold mcp` speaks
      // MCP on it) or the JSON log stream.
      stdio: ["ignore", 2, "pipe", "ipc"],
    });
    this.child.stderr?.setEncoding("utf8");
    this.child.stderr?.on("data", (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-2000);
    });
    this.loaded = new Promise<LoadedInfo>((resolve, reject) => {
      this.child.on("message", (message: RunnerMessage) => {
        switch (message.type) {
          case "ready":
            this.state = "loading";
            this.send({ type: "load", options: options.load });
            return;
          case "loaded":
            this.state = "ready";
            this.info = message.info;
            resolve(message.info);
            return;
          case "load-failed":
            this.stopping = true;
            this.diagnose({ kind: "load-failed", message: message.error.message });
            reject(errorFromPayload(message.error));
            this.child.kill("SIGKILL");
            return;
          default:
            this.onRequestMessage(message);
        }
      });
      this.child.on("exit", (code, signal) => {
        // A runner killed outright cannot stop the llama-server it started: do it here, so none is left behind.
        for (const pid of this.info?.childPids ?? []) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // Already gone (the usual case: the runner stopped it).
          }
        }
        const expected = this.stopping;
        this.state = expected ? "stopped" : "crashed";
        const reason = signal ? `signal ${signal}` : `exit code ${code}`;
        // What it wrote on the way down (llama.cpp asserts, paths, memory figures) is for the admin, never a client.
        if (!expected)
          this.diagnose({
            kind: "crashed",
            message: `the model runner stopped unexpectedly (${reason})`,
            ...(this.stderrTail.trim() ? { stderr: this.stderrTail.trim() } : {}),
          });
        const error = new ServerError(
          `the model runner stopped unexpectedly (${reason}); the server log has the details; the next request restarts it`,
          "runner_crashed",
          true,
        );
        reject(error);
        for (const request of this.pending.values()) {
          request.channel?.fail(error);
          request.reject?.(error);
        }
        this.pending.clear();
        options.onExit?.({ code, signal, expected });
      });
      this.child.on("error", (error) => {
        this.diagnose({ kind: "start-failed", message: `could not start a model runner: ${error.message}` });
        reject(
          new ServerError(
            "could not start a model runner (runner_start_failed); the server log has the details",
            "runner_start_failed",
            true,
            error,
          ),
        );
      });
    });
    // Unhandled if nobody awaits start(); the exit handler reports the failure anyway.
    this.loaded.catch(() => {});
  }

  static async start(options: RunnerStartOptions): Promise<RunnerProcess> {
    const runner = new RunnerProcess(options);
    await runner.loaded;
    return runner;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get activeRequests(): number {
    return this.pending.size;
  }

  private diagnose(diagnostic: RunnerDiagnostic): void {
    try {
      this.onDiagnostic?.(diagnostic);
    } catch {
      // A failing logger must not take the runner's bookkeeping down with it.
    }
  }

  private send(message: ParentMessage): void {
    if (this.child.connected) this.child.send(message);
  }

  private onRequestMessage(message: RunnerMessage): void {
    if (!("id" in message)) return;
    const request = this.pending.get(message.id);
    if (!request) return;
    switch (message.type) {
      case "events":
        request.channel?.pushAll(message.events);
        return;
      case "done":
        this.pending.delete(message.id);
        request.channel?.close();
        return;
      case "failed": {
        this.pending.delete(message.id);
        if (message.error.code === "runner_error")
          this.diagnose({ kind: "request-failed", message: message.error.message });
        const error = errorFromPayload(message.error);
        request.channel?.fail(error);
        request.reject?.(error);
        return;
      }
      case "counted":
        this.pending.delete(message.id);
        request.resolveCount?.(message.promptTokens);
        return;
      case "embeddings":
        this.pending.delete(message.id);
        request.resolveEmbedding?.({ vectors: message.vectors, promptTokens: message.promptTokens });
        return;
      case "ranked":
        this.pending.delete(message.id);
        request.resolveRank?.({ scores: message.scores, promptTokens: message.promptTokens });
        return;
    }
  }

  /** Streams events for one request. Aborting the signal (or leaving the loop early) cancels it in the runner. */
  async *generate(request: RunnerRequest, signal?: AbortSignal): AsyncGenerator<ChatEvent> {
    if (this.state !== "ready")
      throw new ServerError("the model runner is not available; retry", "runner_unavailable", true);
    const id = this.nextId++;
    const channel = new Channel<ChatEvent>();
    this.pending.set(id, { channel });
    const cancel = () => {
      if (this.pending.has(id)) this.send({ type: "cancel", id });
    };
    signal?.addEventListener("abort", cancel, { once: true });
    this.send({ type: "generate", id, request });
    try {
      yield* channel;
    } finally {
      signal?.removeEventListener("abort", cancel);
      cancel();
    }
  }

  embed(input: string[]): Promise<{ vectors: number[][]; promptTokens: number }> {
    if (this.state !== "ready")
      return Promise.reject(new ServerError("the model runner is not available; retry", "runner_unavailable", true));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolveEmbedding: resolve, reject: reject });
      this.send({ type: "embed", id, input });
    });
  }

  /** Scores documents against a query with the model's ranking head (the runner says when it has none). */
  rank(query: string, documents: string[]): Promise<{ scores: number[]; promptTokens: number }> {
    if (this.state !== "ready")
      return Promise.reject(new ServerError("the model runner is not available; retry", "runner_unavailable", true));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolveRank: resolve, reject: reject });
      this.send({ type: "rank", id, query, documents });
    });
  }

  countTokens(request: RunnerRequest): Promise<number> {
    if (this.state !== "ready")
      return Promise.reject(new ServerError("the model runner is not available; retry", "runner_unavailable", true));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolveCount: resolve, reject: reject });
      this.send({ type: "count", id, request });
    });
  }

  /** Asks the runner to exit; kills it if it has not within `graceMs`. */
  async stop(graceMs = 2000): Promise<void> {
    if (this.state === "stopped" || this.state === "crashed") return;
    this.stopping = true;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    this.send({ type: "shutdown" });
    const timer = setTimeout(() => this.child.kill("SIGKILL"), graceMs);
    await exited;
    clearTimeout(timer);
  }

  /** For tests and fault drills: kill the process abruptly. */
  kill(signal: NodeJS.Signals = "SIGKILL"): void {
    this.child.kill(signal);
  }
}
