import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { keyContext, oneTokenSettlement } from "../../test/helpers/controlPlane.js";
import { temporaryDirectory } from "../../test/helpers/paths.js";
import type { ChatEvent, GenerateRequest, ModelPort } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import { RateLimitError } from "../core/errors.js";
import { Gateway } from "../gateway/gateway.js";
import { CircuitBreaker } from "../routing/breaker.js";
import { ControlPlane } from "./controlPlane.js";
import { LEASE_MS } from "./quotas.js";

/**
 * "What was consumed is charged", below HTTP: a consumer that stops reading (a client that hung up) is charged for
 * what its generation used, reservations of a dead start never hold a key's limits, and a client's abort is not a
 * target's failure.
 */

/** Streams one token every few ms until aborted; then, as the engine does, reports what it really used. */
function engineLikePort(promptTokens: number) {
  let generated = 0;
  const port: ModelPort = {
    async *generate(_request, signal): AsyncIterable<ChatEvent> {
      let tokens = 0;
      while (!signal?.aborted && tokens < 1000) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        tokens++;
        generated++;
        yield { type: "text-delta", text: "ab" };
      }
      yield { type: "usage", usage: { promptTokens, completionTokens: tokens } };
      yield { type: "finish", reason: signal?.aborted ? "cancelled" : "length" };
    },
    embed: () => Promise.reject(new Error("unused")),
    listModels: () => Promise.resolve([]),
    countTokens: () => Promise.resolve(promptTokens),
  };
  return { port, generated: () => generated };
}

/** A remote stream: text in chunks, usage only at the very end (as OpenAI and Anthropic stream), never if cut. */
function remoteLikePort(context: () => RequestContext | undefined) {
  const port: ModelPort = {
    async *generate(_request, signal): AsyncIterable<ChatEvent> {
      const current = context();
      if (current) current.servedBy = { provider: "cloud", model: "gpt-4o", remote: true };
      for (let i = 0; i < 200; i++) {
        await new Promise((resolve) => setTimeout(resolve, 2));
        if (signal?.aborted) {
          yield {
            type: "error",
            error: { message: "the stream broke off", code: "upstream_stream_dropped", status: 502, retryable: true },
          };
          return;
        }
        yield { type: "text-delta", text: "Hello " };
      }
      yield { type: "usage", usage: { promptTokens: 9, completionTokens: 200 } };
      yield { type: "finish", reason: "stop" };
    },
    embed: () => Promise.reject(new Error("unused")),
    listModels: () => Promise.resolve([]),
    countTokens: () => Promise.resolve(9),
  };
  return port;
}

function chat(content: string, maxTokens?: number): GenerateRequest {
  return {
    kind: "chat",
    model: "stories",
    messages: [{ role: "user", content }],
    sampling: {},
    limits: maxTokens === undefined ? {} : { maxTokens },
  };
}

const contextFor = (control: ControlPlane, keyName: string) => keyContext(control, keyName, "/v1/chat/completions");

interface Row {
  status: number;
  error_code: string | null;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
  provider: string;
}

function row(control: ControlPlane, requestId: string): Row {
  return control.db
    .prepare(
      "SELECT status, error_code, prompt_tokens, completion_tokens, cost_usd, provider FROM ledger WHERE request_id = ?",
    )
    .get(requestId) as Row;
}

function dayTokens(control: ControlPlane, keyName: string): number {
  const key = control.sqlite.keys.get(keyName);
  const total = control.db
    .prepare("SELECT COALESCE(SUM(tokens), 0) AS tokens FROM usage_totals WHERE key_id = ? AND period LIKE 'day:%'")
    .get(key.id) as { tokens: number };
  return total.tokens;
}

/** Reads `count` events, then stops reading as a client that hangs up does (the HTTP layer calls return()). */
async function readThenLeave(events: AsyncIterable<ChatEvent>, count: number, abort?: AbortController) {
  const iterator = events[Symbol.asyncIterator]();
  const seen: ChatEvent[] = [];
  for (let i = 0; i < count; i++) {
    const next = await iterator.next();
    if (next.done) break;
    seen.push(next.value);
  }
  abort?.abort(new Error("the client closed the connection"));
  await iterator.return?.();
  return seen;
}

describe("what was consumed is charged", () => {
  const home = temporaryDirectory("freehold-charging-");
  let control: ControlPlane;
  before(() => {
    control = new ControlPlane({ home: home.path });
  });
  after(async () => {
    await control.close();
    home.dispose();
  });

  test("a local stream the client leaves early is charged the tokens the engine generated, status 499", async () => {
    control.sqlite.keys.create("leaver", { dailyTokens: 100_000 });
    const { port, generated } = engineLikePort(12);
    const gateway = new Gateway(port, undefined, control);
    for (const withSignal of [true, false]) {
      const context = contextFor(control, "leaver");
      const abort = new AbortController();
      const before = dayTokens(control, "leaver");
      const start = generated();
      // With the client's signal (a hang-up) and without (a consumer that merely stops reading): both are charged.
      await readThenLeave(
        gateway.generate(chat("Once upon a time", 500), context, abort.signal),
        4,
        withSignal ? abort : undefined,
      );
      const charged = row(control, context.requestId);
      assert.equal(charged.status, 499);
      assert.equal(charged.error_code, "cancelled");
      assert.equal(charged.prompt_tokens, 12);
      assert.ok(charged.completion_tokens >= 4, `${charged.completion_tokens} tokens charged, 4 were read`);
      assert.equal(charged.completion_tokens, generated() - start, "exactly what the engine generated");
      assert.equal(dayTokens(control, "leaver") - before, charged.prompt_tokens + charged.completion_tokens);
    }
    const open = control.db.prepare("SELECT COUNT(*) AS n FROM reservations").get() as { n: number };
    assert.equal(open.n, 0, "the reservations were settled");
  });

  test("a remote stream cut short is charged its prompt bound and the bytes received, against the USD budget", async () => {
    control.sqlite.keys.create("remote-leaver", { budgetUsd: 5, dailyTokens: 100_000 });
    let current: RequestContext | undefined;
    const gateway = new Gateway(
      remoteLikePort(() => current),
      undefined,
      control,
    );
    let spent = 0;
    for (let i = 0; i < 3; i++) {
      current = contextFor(control, "remote-leaver");
      const abort = new AbortController();
      const seen = await readThenLeave(gateway.generate(chat("Tell me a story", 400), current, abort.signal), 3, abort);
      const charged = row(control, current.requestId);
      const receivedBytes = seen.reduce((sum, event) => sum + (event.type === "text-delta" ? event.text.length : 0), 0);
      assert.equal(charged.status, 499);
      assert.equal(charged.provider, "cloud");
      assert.ok(charged.completion_tokens >= receivedBytes, "at least one token per byte received");
      assert.ok(charged.completion_tokens <= 400, "never more than max_tokens");
      assert.equal(charged.prompt_tokens, 9, "the prompt's reserved bound (the provider never said)");
      assert.ok(charged.cost_usd > 0, "a cancelled paid stream is not free");
      spent += charged.cost_usd;
    }
    const [line] = await control.admin.usage({ by: "key", key: "remote-leaver" });
    assert.ok(line && Math.abs(line.remoteCostUsd - spent) < 1e-12, "the budget counts the cancelled streams");
  });

  test("a consumer that stops right after the answer settled still closes the generation, so its cleanup runs", async () => {
    control.sqlite.keys.create("early-exit", { dailyTokens: 100_000 });
    let closed = 0;
    const port: ModelPort = {
      async *generate(): AsyncIterable<ChatEvent> {
        try {
          yield { type: "text-delta", text: "hi" };
          yield { type: "usage", usage: { promptTokens: 3, completionTokens: 1 } };
          yield { type: "finish", reason: "stop" };
          yield { type: "text-delta", text: "never read" };
        } finally {
          closed++; // where the engine releases its slot and the router settles its breaker
        }
      },
      embed: () => Promise.reject(new Error("unused")),
      listModels: () => Promise.resolve([]),
      countTokens: () => Promise.resolve(3),
    };
    const gateway = new Gateway(port, undefined, control);
    for await (const event of gateway.generate(chat("hi", 5), contextFor(control, "early-exit")))
      if (event.type === "finish") break;
    assert.equal(closed, 1);
  });

  test("reservations of a start that died stay nowhere: a restart with the same pid frees the key", async () => {
    const shared = temporaryDirectory("freehold-restart-");
    try {
      const first = new ControlPlane({ home: shared.path });
      first.sqlite.keys.create("single", { maxConcurrent: 1 });
      const target = { provider: "local", model: "stories", remote: false };
      await first.admit({ kind: "generate", promptTokenBound: 5, maxTokens: 5 }, contextFor(first, "single"), target);
      await assert.rejects(
        () => first.admit({ kind: "generate", promptTokenBound: 5, maxTokens: 5 }, contextFor(first, "single"), target),
        (e: unknown) => e instanceof RateLimitError && e.code === "concurrency_limit_exceeded",
      );
      // The process "dies" with its reservation open; the next start gets the same pid (PID 1 in a container).
      await first.close();
      const second = new ControlPlane({ home: shared.path });
      try {
        const admission = await second.admit(
          { kind: "generate", promptTokenBound: 5, maxTokens: 5 },
          contextFor(second, "single"),
          target,
        );
        await admission.settle(oneTokenSettlement);
      } finally {
        await second.close();
      }
    } finally {
      shared.dispose();
    }
  });

  test("a lease another live start stopped renewing expires; one it renews holds", async () => {
    control.sqlite.keys.create("leased", { maxConcurrent: 1 });
    const key = control.sqlite.keys.get("leased");
    const target = { provider: "local", model: "stories", remote: false };
    const insert = control.db.prepare(
      "INSERT INTO reservations (id, key_id, tokens, usd, pid, created_ms, instance, lease_until_ms) VALUES (?, ?, 1, 0, ?, ?, 'run_other', ?)",
    );
    // A live pid (our parent) that is not this start: only the lease can tell it is gone.
    insert.run("rsv_live", key.id, process.ppid, Date.now(), Date.now() + LEASE_MS);
    await assert.rejects(
      () =>
        control.admit({ kind: "generate", promptTokenBound: 1, maxTokens: 1 }, contextFor(control, "leased"), target),
      (e: unknown) => e instanceof RateLimitError && e.code === "concurrency_limit_exceeded",
    );
    control.db.prepare("UPDATE reservations SET lease_until_ms = ? WHERE id = 'rsv_live'").run(Date.now() - 1);
    const admission = await control.admit(
      { kind: "generate", promptTokenBound: 1, maxTokens: 1 },
      contextFor(control, "leased"),
      target,
    );
    await admission.settle(oneTokenSettlement);
    const left = control.db.prepare("SELECT COUNT(*) AS n FROM reservations WHERE key_id = ?").get(key.id) as {
      n: number;
    };
    assert.equal(left.n, 0, "the expired reservation was removed, ours settled");
    // This start's own reservations are renewed, never expired by others' sweeps.
    const mine = await control.admit(
      { kind: "generate", promptTokenBound: 1, maxTokens: 1 },
      contextFor(control, "leased"),
      target,
    );
    assert.equal(control.sqlite.quotas.renewLeases(Date.now() + 10 * LEASE_MS), 1);
    await mine.settle(oneTokenSettlement);
  });

  test("a breaker's probe abandoned by the client is neither a success nor a failure", async () => {
    let now = 0;
    const breaker = new CircuitBreaker(2, 1000, () => now);
    breaker.failure();
    breaker.failure();
    assert.equal(breaker.state, "open");
    now = 2000;
    assert.equal(breaker.tryAcquire(), true, "the probe");
    assert.equal(breaker.tryAcquire(), false, "one probe at a time");
    breaker.abandon();
    assert.equal(breaker.state, "half-open");
    assert.equal(breaker.tryAcquire(), true, "the probe slot is free again");
  });
});
