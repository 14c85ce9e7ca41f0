/**
 * The runner: a child process that hosts one model through node-llama-cpp. If llama.cpp crashes or runs out of
 * memory, this process dies and the server lives on. It speaks protocol.ts over Node IPC.
 */
import type { ChatEvent } from "../../core/chat.js";
import { eventFromError } from "../../core/errors.js";
import { loadLlamaServerModel } from "./llamaServerModel.js";
import type { ErrorPayload, ParentMessage, RunnerMessage } from "./protocol.js";
import { loadRunnerModel, type RunnerModel } from "./runnerModel.js";

function send(message: RunnerMessage): void {
  process.send?.(message);
}

/** A plain exception (not one of ours) is internal to the runner: runnerProcess.ts hides its message from clients. */
function toPayload(error: unknown): ErrorPayload {
  return eventFromError(error, "runner_error");
}

let model: RunnerModel | undefined;
const cancels = new Map<number, AbortController>();
let flushIntervalMs = 4;

/** Gathers a request's events and sends them in one message per interval; the first event goes out at once. */
class EventBatcher {
  private pending: ChatEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sentFirst = false;
  constructor(private readonly id: number) {}
  push(event: ChatEvent): void {
    this.pending.push(event);
    if (!this.sentFirst || flushIntervalMs === 0) {
      this.sentFirst = true;
      this.flush();
    } else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), flushIntervalMs);
    }
  }
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.length === 0) return;
    send({ type: "events", id: this.id, events: this.pending });
    this.pending = [];
  }
}

async function handle(message: ParentMessage): Promise<void> {
  switch (message.type) {
    case "load": {
      try {
        flushIntervalMs = message.options.flushIntervalMs;
        model =
          message.options.engine === "llama-server"
            ? await loadLlamaServerModel(message.options)
            : await loadRunnerModel(message.options);
        send({ type: "loaded", info: model.info });
      } catch (error) {
        send({ type: "load-failed", error: toPayload(error) });
      }
      return;
    }
    case "generate": {
      const controller = new AbortController();
      cancels.set(message.id, controller);
      const batcher = new EventBatcher(message.id);
      try {
        if (!model) throw Object.assign(new Error("model is not loaded"), { code: "model_not_loaded", status: 503 });
        await model.generate(message.request, controller.signal, (event) => batcher.push(event));
        batcher.flush();
        send({ type: "done", id: message.id });
      } catch (error) {
        batcher.flush();
        send({ type: "failed", id: message.id, error: toPayload(error) });
      } finally {
        cancels.delete(message.id);
      }
      return;
    }
    case "embed": {
      try {
        if (!model) throw Object.assign(new Error("model is not loaded"), { code: "model_not_loaded", status: 503 });
        const result = await model.embed(message.input);
        send({ type: "embeddings", id: message.id, ...result });
      } catch (error) {
        send({ type: "failed", id: message.id, error: toPayload(error) });
      }
      return;
    }
    case "rank": {
      try {
        if (!model) throw Object.assign(new Error("model is not loaded"), { code: "model_not_loaded", status: 503 });
        const result = await model.rank(message.query, message.documents);
        send({ type: "ranked", id: message.id, ...result });
      } catch (error) {
        send({ type: "failed", id: message.id, error: toPayload(error) });
      }
      return;
    }
    case "count": {
      try {
        if (!model) throw Object.assign(new Error("model is not loaded"), { code: "model_not_loaded", status: 503 });
        send({
          type: "counted",
          id: message.id,
          promptTokens: await model.countTokens(message.request),
        });
      } catch (error) {
        send({ type: "failed", id: message.id, error: toPayload(error) });
      }
      return;
    }
    case "cancel":
      cancels.get(message.id)?.abort();
      return;
    case "shutdown":
      for (const controller of cancels.values()) controller.abort();
      await model?.dispose();
      process.exit(0);
      return;
    default:
      message satisfies never;
  }
}

process.on("message", (message: ParentMessage) => {
  void handle(message);
});
// The server is our lifeline: if it goes away (even by SIGKILL), so do we (and a llama-server we started).
process.on("disconnect", () => {
  const exit = () => process.exit(0);
  setTimeout(exit, 3000).unref();
  void (model?.dispose() ?? Promise.resolve()).then(exit, exit);
});
send({ type: "ready" });
