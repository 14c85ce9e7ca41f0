import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { ChatEvent, GenerateRequest } from "../core/chat.js";
import type { ModelSummary } from "../gguf/types.js";
import { Engine, type EngineEvent, type EngineOptions, type ResolvedModel } from "./engine.js";
import type { LoadedInfo } from "./runner/protocol.js";
import type { RunnerProcess, RunnerStartOptions } from "./runnerProcess.js";

const MiB = 1024 * 1024;

function summary(size: number): ModelSummary {
  return {
    architecture: "llama",
    name: null,
    parameters: 1,
    parameterSize: "1",
    fileType: "F32",
    tensorTypes: {},
    contextLength: 4096,
    embeddingLength: 64,
    blockCount: 2,
    feedForwardLength: 128,
    headCount: 4,
    headCountKv: 4,
    vocabularySize: 32,
    tokenizer: null,
    hasChatTemplate: false,
    chatTemplate: null,
    specialTokens: {},
    license: null,
    size,
    tensorCount: 1,
    splitCount: 1,
    synthetic: true,
  };
}

/**
 * A runner stand-in: each generate waits until the test lets it finish (`finish(n)`), so requests can be held in
 * their slots while the test looks at the queue.
 */
class FakeRunner {
  state: RunnerProcess["state"] = "ready";
  stopped = false;
  readonly pid = 1;
  info: LoadedInfo;
  private readonly gates: (() => void)[] = [];
  running = 0;
  /** Generations started, ever. */
  calls = 0;
  constructor(
    readonly options: RunnerStartOptions,
    sequences: number,
  ) {
    this.info = {
      vramBytes: 0,
      contextSize: options.load.contextSize,
      trainContextSize: 4096,
      threads: options.load.threads,
      busyThreads: options.load.threads,
      engine: "node-llama-cpp",
      vision: false,
      childPids: [],
      sequences,
      vocabularySize: 32,
      embeddingLength: 64,
      hasChatTemplate: false,
      chatFormat: "chatml-fallback",
      backend: "cpu",
      gpuLayers: 0,
      loadMs: 1,
      flashAttention: options.load.flashAttention,
    };
  }
  async *generate(): AsyncGenerator<ChatEvent> {
    this.running++;
    this.calls++;
    try {
      await new Promise<void>((resolve) => this.gates.push(resolve));
      yield { type: "text-delta", text: "ok" };
    } finally {
      this.running--;
    }
  }
  /** Lets the oldest running generation end. */
  finishOne(): void {
    this.gates.shift()?.();
  }
  async embed(input: string[]) {
    return { vectors: input.map(() => [1]), promptTokens: input.length };
  }
  async countTokens() {
    return 7;
  }
  async stop() {
    this.stopped = true;
    this.state = "stopped";
  }
  /** Dies as if llama.cpp crashed. */
  crash() {
    this.state = "crashed";
    this.options.onExit?.({ code: null, signal: "SIGSEGV", expected: false });
  }
}

function setup(
  models: Record<string, number>,
  overrides: Partial<EngineOptions> & { sequences?: number; runnerSequences?: number } = {},
) {
  const started: FakeRunner[] = [];
  const events: EngineEvent[] = [];
  const resolved = (name: string): ResolvedModel => {
    const size = models[name];
    if (size === undefined) throw new Error(`no model ${name}`);
    return { name, digest: `sha256:${name}`, paths: [`/${name}.gguf`], summary: summary(size), addedAt: "" };
  };
  const engine = new Engine({
    resolver: {
      resolve: async (name) => resolved(name),
      list: async () => Object.keys(models).map(resolved),
    },
    threads: 0,
    contextSize: 256,
    sequences: overrides.sequences ?? 2,
    keepAliveMs: 60_000,
    maxQueue: 8,
    queueTimeoutMs: 5_000,
    memoryBudget: 0,
    freeMemory: () => Number.MAX_SAFE_INTEGER,
    environment: (extra) => extra,
    onEvent: (event) => events.push(event),
    startRunner: async (options) => {
      await sleep(1);
      const runner = new FakeRunner(options, overrides.runnerSequences ?? overrides.sequences ?? 2);
      started.push(runner);
      return runner as unknown as RunnerProcess;
    },
    ...overrides,
  });
  return { engine, started, events };
}

function request(model: string, extra: Partial<GenerateRequest> = {}): GenerateRequest {
  return { kind: "completion", model, prompt: "hi", sampling: {}, limits: {}, ...extra } as GenerateRequest;
}

/** Starts a generation and returns a promise of its text. */
function run(engine: Engine, model: string, extra: Partial<GenerateRequest> = {}, signal?: AbortSignal) {
  return (async () => {
    let text = "";
    for await (const event of engine.generate(request(model, extra), signal))
      if (event.type === "text-delta") text += event.text;
    return text;
  })();
}

async function until(condition: () => boolean, what: string): Promise<void> {
  // Generous: under a loaded CI machine a turn of the event loop can take long; a pass exits early anyway.
  for (let i = 0; i < 2000 && !condition(); i++) await sleep(5);
  assert.ok(condition(), `timed out waiting for: ${what}`);
}

describe("engine scheduling on fake runners", () => {
  test("concurrent first requests share one load; past the slots they queue and run in order", async () => {
    const { engine, started } = setup({ a: MiB });
    const answers = [run(engine, "a"), run(engine, "a"), run(engine, "a")];
    await until(() => started[0]?.running === 2, "two running");
    assert.equal(started.length, 1, "one runner for three concurrent requests");
    const [status] = engine.status().models;
    assert.equal(status?.activeRequests, 2);
    assert.equal(status?.queuedRequests, 1);
    started[0]!.finishOne();
    await until(() => engine.status().models[0]?.queuedRequests === 0, "the waiter admitted");
    started[0]!.finishOne();
    started[0]!.finishOne();
    assert.deepEqual(await Promise.all(answers), ["ok", "ok", "ok"]);
    assert.equal(engine.status().models[0]?.activeRequests, 0);
    await engine.close();
  });

  test("a full queue answers 503 queue_full; a client leaving the queue frees its place", async () => {
    const { engine, started } = setup({ a: MiB }, { maxQueue: 1, sequences: 1 });
    const first = run(engine, "a");
    await until(() => started[0]?.running === 1, "one running");
    const controller = new AbortController();
    const queued = run(engine, "a", {}, controller.signal);
    await until(() => engine.status().models[0]?.queuedRequests === 1, "one queued");
    await assert.rejects(run(engine, "a"), { code: "queue_full", status: 503 });
    controller.abort(new Error("gone"));
    await assert.rejects(queued, /gone/);
    const third = run(engine, "a");
    await until(() => engine.status().models[0]?.queuedRequests === 1, "the next one queued in its place");
    started[0]!.finishOne();
    await until(() => started[0]?.calls === 2, "third admitted");
    started[0]!.finishOne();
    assert.deepEqual(await Promise.all([first, third]), ["ok", "ok"]);
    await engine.close();
  });

  test("over the memory budget, the least recently used idle model is unloaded to load another", async () => {
    // Each model's estimate is its size + KV cache + 64 MiB overhead; the budget holds two of them, not three.
    const { engine, started, events } = setup(
      { a: 100 * MiB, b: 100 * MiB, c: 100 * MiB },
      { memoryBudget: 400 * MiB },
    );
    for (const name of ["a", "b"]) {
      const answer = run(engine, name);
      await until(() => started.at(-1)?.running === 1, `${name} running`);
      started.at(-1)!.finishOne();
      await answer;
    }
    await sleep(2);
    await engine.preload("a"); // a is now the most recently used
    const answer = run(engine, "c");
    await until(() => started.length === 3 && started[2]!.running === 1, "c running");
    assert.equal(started[1]!.stopped, true, "b (least recently used) was unloaded");
    assert.equal(started[0]!.stopped, false, "a stays");
    assert.deepEqual(
      engine
        .status()
        .models.map((m) => m.name)
        .sort(),
      ["a", "c"],
    );
    assert.ok(events.some((e) => e.type === "model-unloaded" && e.model === "b"));
    started[2]!.finishOne();
    await answer;
    await engine.close();
  });

  test("a busy model is not evicted: the new one gets 503 insufficient_memory_busy", async () => {
    const { engine, started } = setup({ a: 100 * MiB, b: 100 * MiB }, { memoryBudget: 250 * MiB });
    const busy = run(engine, "a");
    await until(() => started[0]?.running === 1, "a running");
    await assert.rejects(run(engine, "b"), { code: "insufficient_memory_busy", status: 503 });
    assert.equal(engine.status().models.length, 1, "b's failed load leaves no slot behind");
    started[0]!.finishOne();
    await busy;
    await engine.close();
  });

  test("the machine's free memory (freeMemory seam) limits loads as the budget does", async () => {
    const { engine } = setup({ a: 100 * MiB }, { freeMemory: () => 10 * MiB });
    await assert.rejects(engine.preload("a"), { code: "insufficient_memory_busy" });
    await engine.close();
  });

  test("keep_alive 0 unloads when the request ends; a later request's keep_alive replaces the default", async () => {
    const { engine, started } = setup({ a: MiB });
    const answer = run(engine, "a", { keepAliveMs: 0 });
    await until(() => started[0]?.running === 1, "running");
    started[0]!.finishOne();
    await answer;
    await until(() => started[0]!.stopped, "unloaded");
    assert.equal(engine.status().models.length, 0);

    const second = run(engine, "a", { keepAliveMs: 30 });
    await until(() => started[1]?.running === 1, "running again");
    assert.equal(engine.status().models[0]?.expiresAt, null, "no expiry while busy");
    started[1]!.finishOne();
    await second;
    assert.ok(engine.status().models[0]?.expiresAt, "an expiry once idle");
    await until(() => started[1]!.stopped, "unloaded after 30 ms");
    await engine.close();
  });

  test("unload while busy waits for the running request, then unloads", async () => {
    const { engine, started } = setup({ a: MiB });
    const answer = run(engine, "a");
    await until(() => started[0]?.running === 1, "running");
    assert.equal(await engine.unloadByName("a"), true);
    assert.equal(started[0]!.stopped, false);
    started[0]!.finishOne();
    await answer;
    await until(() => started[0]!.stopped, "unloaded when it ended");
    assert.equal(await engine.unloadByName("a"), false);
    await engine.close();
  });

  test("a runner that crashed is restarted by the next request and the restart is counted", async () => {
    const { engine, started, events } = setup({ a: MiB });
    await engine.preload("a");
    started[0]!.crash();
    assert.equal(engine.status().models[0]?.state, "crashed");
    assert.ok(events.some((e) => e.type === "runner-crashed" && e.detail === "SIGSEGV"));
    const answer = run(engine, "a");
    await until(() => started[1]?.running === 1, "a new runner");
    assert.equal(engine.status().models[0]?.restarts, 1);
    started[1]!.finishOne();
    assert.equal(await answer, "ok");
    await engine.close();
  });

  test("a request with other load settings waits for running requests, then reloads with them", async () => {
    const { engine, started } = setup({ a: MiB });
    const first = run(engine, "a");
    await until(() => started[0]?.running === 1, "running");
    const reloading = run(engine, "a", { load: { contextSize: 128 } });
    await sleep(20);
    assert.equal(started.length, 1, "no reload while a request runs");
    started[0]!.finishOne();
    await first;
    await until(() => started[1]?.running === 1, "reloaded");
    assert.equal(started[0]!.stopped, true);
    assert.equal(started[1]!.options.load.contextSize, 128);
    // Left-out settings accept what is loaded: no second reload.
    const same = run(engine, "a");
    await until(() => started[1]!.running === 2, "both on the reloaded runner");
    assert.equal(started.length, 2);
    started[1]!.finishOne();
    started[1]!.finishOne();
    await Promise.all([reloading, same]);
    await engine.close();
  });

  test("a failed start is reported, leaves no slot, and the next request tries again", async () => {
    let fail = true;
    const { engine, events } = setup(
      { a: MiB },
      {
        startRunner: async (options) => {
          if (fail) throw new Error("llama.cpp could not load the model");
          return new FakeRunner(options, 2) as unknown as RunnerProcess;
        },
      },
    );
    await assert.rejects(engine.preload("a"), /could not load/);
    assert.equal(engine.status().lastStartError, "llama.cpp could not load the model");
    assert.equal(engine.status().models.length, 0);
    assert.ok(events.some((e) => e.type === "model-load-failed"));
    fail = false;
    await engine.preload("a");
    assert.equal(engine.status().lastStartError, undefined);
    assert.equal(engine.status().models[0]?.state, "ready");
    await engine.close();
  });

  test("after close, requests get 503 shutting_down and every runner is stopped", async () => {
    const { engine, started } = setup({ a: MiB });
    await engine.preload("a");
    await engine.close();
    assert.equal(started[0]!.stopped, true);
    await assert.rejects(run(engine, "a"), { code: "shutting_down", status: 503 });
  });
});
