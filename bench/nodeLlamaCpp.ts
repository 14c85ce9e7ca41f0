// node-llama-cpp called directly (no HTTP, no runner protocol), in its own child process: see nodeLlamaCppWorker.ts.
import { type ChildProcess, fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { WorkerReply, WorkerRequest } from "./nodeLlamaCppWorker.js";
import { projectRoot, stopProcess, track } from "./processes.js";
import type { Sample } from "./sse.js";
import type { BenchSystem } from "./system.js";

class Worker {
  private readonly child: ChildProcess;
  private waiting: { resolve: (reply: WorkerReply) => void; reject: (error: Error) => void } | undefined;
  private stderr = "";

  constructor() {
    this.child = track(
      fork(fileURLToPath(new URL("./nodeLlamaCppWorker.ts", import.meta.url)), [], {
        cwd: projectRoot,
        execArgv: ["--import", "tsx"],
        // What freehold's runner uses: one libuv thread, so decodes always run on the same thread.
        env: { ...process.env, UV_THREADPOOL_SIZE: "1" },
        stdio: ["ignore", "ignore", "pipe", "ipc"],
      }),
    );
    this.child.stderr?.on("data", (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString("utf8")).slice(-4_000);
    });
    this.child.on("message", (message: WorkerReply) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      if (!waiting) return;
      if (message.type === "error") waiting.reject(new Error(`node-llama-cpp worker: ${message.message}`));
      else waiting.resolve(message);
    });
    this.child.on("exit", (code, signal) => {
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting?.reject(new Error(`node-llama-cpp worker exited (${code ?? signal})\n${this.stderr}`));
    });
  }

  ask(request: WorkerRequest): Promise<WorkerReply> {
    if (this.waiting) return Promise.reject(new Error("node-llama-cpp worker is busy"));
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.child.send(request);
    });
  }

  close(): Promise<void> {
    return stopProcess(this.child);
  }
}

export async function startNodeLlamaCpp(options: {
  modelPath: string;
  threads: number;
  contextSize: number;
}): Promise<BenchSystem> {
  const worker = new Worker();
  try {
    const loaded = await worker.ask({ type: "load", ...options });
    if (loaded.type !== "loaded") throw new Error(`unexpected reply ${loaded.type}`);
    return {
      engine: "node-llama-cpp",
      requested: options.threads,
      threads: loaded.threads,
      async run(prompt: string, tokens: number): Promise<Sample> {
        const reply = await worker.ask({ type: "run", prompt, tokens });
        if (reply.type !== "sample") throw new Error(`unexpected reply ${reply.type}`);
        return reply.sample;
      },
      close: () => worker.close(),
    };
  } catch (error) {
    await worker.close();
    throw error;
  }
}
