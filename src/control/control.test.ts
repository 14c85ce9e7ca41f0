import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { after, before, describe, test } from "node:test";
import { keyContext } from "../../test/helpers/controlPlane.js";
import { temporaryDirectory } from "../../test/helpers/paths.js";
import type { ChatEvent, GenerateRequest, ModelPort } from "../core/chat.js";
import { AuthenticationError, FreeholdError, InvalidRequestError, RateLimitError } from "../core/errors.js";
import { Gateway } from "../gateway/gateway.js";
import { ControlPlane } from "./controlPlane.js";
import { PriceTable } from "./prices.js";
import { formatReset } from "./quotas.js";

/** A port whose generations all wait until `release()`, then report a fixed usage: deterministic concurrency. */
function gatedPort(usage: { promptTokens: number; completionTokens: number }) {
  let open: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let started = 0;
  const port: ModelPort = {
    async *generate(): AsyncIterable<ChatEvent> {
      started++;
      await gate;
      yield { type: "text-delta", text: "hello" };
      yield { type: "usage", usage };
      yield { type: "finish", reason: "stop" };
    },
    embed: () => Promise.reject(new Error("unused")),
    listModels: () => Promise.resolve([]),
    // Counts as a real engine does: the prompt tokens it will report (the reservation's bound for local models).
    countTokens: () => Promise.resolve(usage.promptTokens),
  };
  return { port, release: () => open(), started: () => started };
}

function request(prompt = "Once upon a time", maxTokens = 20): GenerateRequest {
  return { kind: "completion", model: "stories", prompt, sampling: {}, limits: { maxTokens } };
}

const contextFor = (control: ControlPlane, keyName: string) => keyContext(control, keyName, "/v1/completions");

async function drain(events: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

describe("control plane", () => {
  const home = temporaryDirectory("freehold-control-");
  const logs = new PassThrough();
  let logText = "";
  logs.on("data", (chunk) => {
    logText += chunk;
  });
  let control: ControlPlane;
  before(() => {
    control = new ControlPlane({ home: home.path, logOutput: logs });
  });
  after(async () => {
    await control.close();
    home.dispose();
  });

  test("a key's secret is fh- and 256 random bits, shown once; only its hash is stored", async () => {
    const { secret, key } = control.sqlite.keys.create("hashing");
    assert.match(secret, /^fh-[A-Za-z0-9_-]{43}$/);
    assert.equal(Buffer.from(secret.slice(3), "base64url").length, 32);
    const row = control.db.prepare("SELECT * FROM keys WHERE id = ?").get(key.id) as Record<string, unknown>;
    assert.ok(!JSON.stringify(row).includes(secret.slice(3)));
    assert.match(String(row.hash), /^[0-9a-f]{64}$/);
    assert.equal((await control.authenticate(secret))?.name, "hashing");
  });

  test("unknown, malformed, revoked and expired keys are 401s that never echo the secret", async () => {
    const { secret } = control.sqlite.keys.create("short-lived", {
      expiresAt: new Date(Date.now() - 1000).toISOString(),
    });
    await assert.rejects(
      () => control.authenticate(secret),
      (e: unknown) => e instanceof AuthenticationError && e.code === "key_expired",
    );
    const revoked = control.sqlite.keys.create("revoked-one");
    await control.admin.revokeKey("revoked-one", "test");
    await assert.rejects(
      () => control.authenticate(revoked.secret),
      (e: unknown) => e instanceof AuthenticationError && e.code === "key_revoked",
    );
    const forged = `fh-${"A".repeat(43)}`;
    await assert.rejects(
      () => control.authenticate(forged),
      (e: unknown) => e instanceof AuthenticationError && !e.message.includes(forged),
    );
    await assert.rejects(
      () => control.authenticate(undefined),
      (e: unknown) => e instanceof AuthenticationError && e.code === "missing_api_key",
    );
  });

  test("SQL-injection strings as keys, key names and model names are refused, and the tables stay intact", async () => {
    const injections = ["' OR '1'='1", "x'; DROP TABLE keys; --", 'a" OR 1=1 --', "fh-' OR 1=1 --"];
    for (const text of injections) {
      await assert.rejects(() => control.authenticate(text), AuthenticationError);
      assert.throws(() => control.sqlite.keys.create(text), InvalidRequestError);
      assert.throws(() => control.sqlite.keys.create("scoped-bad", { models: [text] }), InvalidRequestError);
      assert.throws(
        () => control.sqlite.keys.get(text),
        (e: unknown) => e instanceof FreeholdError && e.status === 404,
      );
    }
    const count = control.db.prepare("SELECT COUNT(*) AS n FROM keys").get() as { n: number };
    assert.ok(count.n >= 3);
    assert.equal(control.db.pragma("integrity_check", { simple: true }), "ok");
  });

  test("50 concurrent requests against a daily budget for 10: exactly 10 run, and the ledger equals real usage", async () => {
    const { port, release, started } = gatedPort({ promptTokens: 7, completionTokens: 13 });
    const gateway = new Gateway(port, undefined, control);
    // The local model's own count of the prompt (7) plus max_tokens: the reservation's true worst case.
    const worst = 7 + 20;
    control.sqlite.keys.create("budgeted", { dailyTokens: worst * 10 });
    const attempts = Array.from({ length: 50 }, () => {
      const iterator = gateway.generate(request(), contextFor(control, "budgeted"))[Symbol.asyncIterator]();
      return iterator.next().then(
        async (first) => ({
          ok: true as const,
          rest: [first.value, ...(await drain({ [Symbol.asyncIterator]: () => iterator }))],
        }),
        (error: unknown) => ({ ok: false as const, error }),
      );
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(started(), 10, "exactly ten generations started while all fifty were waiting");
    release();
    const results = await Promise.all(attempts);
    const admitted = results.filter((result) => result.ok);
    const refused = results.filter((result) => !result.ok);
    assert.equal(admitted.length, 10);
    assert.equal(refused.length, 40);
    for (const result of refused) {
      assert.ok(result.error instanceof RateLimitError);
      assert.equal(result.error.code, "daily_tokens_exceeded");
      assert.ok(result.error.retryAfterSeconds >= 1);
    }
    const key = control.sqlite.keys.get("budgeted");
    const ledger = control.db
      .prepare(
        "SELECT COUNT(*) AS n, SUM(prompt_tokens + completion_tokens) AS tokens FROM ledger WHERE key_id = ? AND status = 200",
      )
      .get(key.id) as { n: number; tokens: number };
    assert.deepEqual(ledger, { n: 10, tokens: 10 * 20 });
    const total = control.db
      .prepare("SELECT SUM(tokens) AS tokens FROM usage_totals WHERE key_id = ? AND period LIKE 'day:%'")
      .get(key.id) as { tokens: number };
    assert.equal(total.tokens, 200, "enforcement reads the same totals the ledger wrote");
    const open = control.db.prepare("SELECT COUNT(*) AS n FROM reservations WHERE key_id = ?").get(key.id) as {
      n: number;
    };
    assert.equal(open.n, 0, "every reservation was settled");
    const refusedRows = control.db
      .prepare("SELECT COUNT(*) AS n FROM ledger WHERE key_id = ? AND status = 429")
      .get(key.id) as { n: number };
    assert.equal(refusedRows.n, 40);
  });

  test("one key at its limit never slows another; concurrency limits hold and free up", async () => {
    const { port, release } = gatedPort({ promptTokens: 1, completionTokens: 1 });
    const gateway = new Gateway(port, undefined, control);
    control.sqlite.keys.create("one-at-a-time", { maxConcurrent: 1 });
    control.sqlite.keys.create("neighbour");
    const first = gateway.generate(request(), contextFor(control, "one-at-a-time"))[Symbol.asyncIterator]();
    const firstEvent = first.next();
    await new Promise((resolve) => setTimeout(resolve, 10));
    await assert.rejects(
      gateway.generate(request(), contextFor(control, "one-at-a-time"))[Symbol.asyncIterator]().next(),
      (e: unknown) => e instanceof RateLimitError && e.code === "concurrency_limit_exceeded",
    );
    const neighbour = gateway.generate(request(), contextFor(control, "neighbour"))[Symbol.asyncIterator]().next();
    release();
    assert.equal((await neighbour).done, false);
    await firstEvent;
    await drain({ [Symbol.asyncIterator]: () => first });
    const again = await drain(gateway.generate(request(), contextFor(control, "one-at-a-time")));
    assert.equal(again.at(-1)?.type, "finish");
  });

  test("requests per minute: the bucket empties, then 429 with a Retry-After and OpenAI's headers", async () => {
    const { port, release } = gatedPort({ promptTokens: 2, completionTokens: 3 });
    release();
    const gateway = new Gateway(port, undefined, control);
    control.sqlite.keys.create("rpm-two", { rpm: 2, tpm: 1000 });
    await drain(gateway.generate(request(), contextFor(control, "rpm-two")));
    await drain(gateway.generate(request(), contextFor(control, "rpm-two")));
    await assert.rejects(
      drain(gateway.generate(request(), contextFor(control, "rpm-two"))),
      (e: unknown) =>
        e instanceof RateLimitError && e.code === "requests_per_minute_exceeded" && e.retryAfterSeconds > 1,
    );
    const headers = await control.rateLimitHeaders(control.sqlite.keys.get("rpm-two"));
    assert.equal(headers["x-ratelimit-limit-requests"], "2");
    assert.equal(headers["x-ratelimit-remaining-requests"], "0");
    assert.equal(headers["x-ratelimit-limit-tokens"], "1000");
    assert.ok(Number(headers["x-ratelimit-remaining-tokens"]) >= 990, "unused reserved tokens went back to the bucket");
    assert.match(headers["x-ratelimit-reset-requests"]!, /^\d+(ms|s|m\d+s)$/);
    assert.equal(formatReset(360_000), "6m0s");
  });

  test("a worst case larger than the tokens-per-minute limit is refused before it runs, naming max_tokens", async () => {
    const { port, release } = gatedPort({ promptTokens: 1, completionTokens: 1 });
    release();
    control.sqlite.keys.create("tiny-tpm", { tpm: 10 });
    const gateway = new Gateway(port, undefined, control);
    await assert.rejects(
      drain(gateway.generate(request("Once upon a time", 100), contextFor(control, "tiny-tpm"))),
      (e: unknown) => e instanceof RateLimitError && /lower max_tokens/.test(e.message),
    );
  });

  test("model scopes: a key limited to some models gets a 403 for others", async () => {
    const { port, release } = gatedPort({ promptTokens: 1, completionTokens: 1 });
    release();
    control.sqlite.keys.create("scoped", { models: ["stories"] });
    const gateway = new Gateway(port, undefined, control);
    await drain(gateway.generate(request(), contextFor(control, "scoped")));
    await assert.rejects(
      drain(gateway.generate({ ...request(), model: "gpt-secret" }, contextFor(control, "scoped"))),
      (e: unknown) => e instanceof FreeholdError && e.status === 403 && e.code === "model_not_allowed",
    );
  });

  test("remote requests cost their price; local ones what they would have cost, and electricity", async () => {
    const prices = new PriceTable();
    assert.equal(prices.cost("gpt-4o", 1_000_000, 1_000_000), 12.5);
    assert.equal(prices.lookup("openai/gpt-4o-2024-08-06")?.model, "gpt-4o");
    assert.equal(prices.lookup("gpt-4o-mini-2024-07-18")?.model, "gpt-4o-mini");
    // A newer model whose name extends an older one's is priced as itself, not as the older (dearer) one.
    assert.equal(prices.lookup("claude-opus-4-5-20251101")?.model, "claude-opus-4-5");
    assert.equal(prices.cost("claude-opus-4-5-20251101", 1_000_000, 1_000_000), 30);
    assert.equal(prices.lookup("claude-opus-4-20250514")?.model, "claude-opus-4");
    assert.equal(prices.cost("llama-local", 1, 1), null);
    assert.ok(Math.abs(prices.energyCost(3_600_000) - 0.065 * 0.15) < 1e-12);
    for (const entry of Object.values(prices.prices)) {
      assert.match(entry.date, /^\d{4}-\d{2}-\d{2}$/);
      assert.match(entry.source, /^https:\/\//);
    }
  });

  test("a USD budget for remote models is reserved at the worst case and settled at the price", async () => {
    control.sqlite.keys.create("spender", { budgetUsd: 0.01 });
    const target = { provider: "openai", model: "gpt-4o", remote: true };
    const context = contextFor(control, "spender");
    // 1000 tokens of prompt bound + 1000 output at gpt-4o: $0.0025 + $0.01 = $0.0125 > $0.01.
    await assert.rejects(
      () => control.admit({ kind: "generate", promptTokenBound: 1000, maxTokens: 1000 }, context, target),
      (e: unknown) => e instanceof RateLimitError && e.code === "budget_exceeded",
    );
    const routed = contextFor(control, "spender");
    const admission = await control.admit({ kind: "generate", promptTokenBound: 1000, maxTokens: 100 }, routed, target);
    // As the router does for every remote request (verify cross-checks remote ledger rows against these).
    control.audit.recordSoon({ actor: "spender", action: "route.served", requestId: routed.requestId });
    await admission.settle({
      promptTokens: 800,
      completionTokens: 50,
      cachedTokens: 0,
      timeToFirstTokenMs: 5,
      status: 200,
    });
    const [line] = await control.admin.usage({ by: "key", key: "spender" });
    assert.ok(line);
    assert.ok(Math.abs(line.remoteCostUsd - (800 * 2.5 + 50 * 10) / 1e6) < 1e-12);
  });

  test("entries recorded soon are written in order, in one batch, and chained with those recorded at once", async () => {
    const before = (await control.audit.list({ limit: 100_000 })).length;
    control.audit.recordSoon({ actor: "router", action: "route.served", requestId: "req_a" });
    control.audit.recordSoon({ actor: "router", action: "route.served", requestId: "req_b" });
    const unwritten = control.db.prepare("SELECT COUNT(*) AS n FROM audit WHERE request_id IN ('req_a', 'req_b')");
    assert.equal((unwritten.get() as { n: number }).n, 0, "not written yet: off the request's path");
    // An entry recorded at once goes after the queued ones: the trail keeps the order things happened in.
    void control.audit.record({ actor: "test", action: "key.revoke", target: "x" });
    await new Promise((resolve) => setImmediate(resolve));
    control.audit.recordSoon({ actor: "router", action: "route.failed", requestId: "req_c" });
    const entries = (await control.audit.list({ limit: 100_000 })).slice(before);
    assert.deepEqual(
      entries.map((entry) => entry.requestId ?? entry.action),
      ["req_a", "req_b", "key.revoke", "req_c"],
    );
    assert.deepEqual((await control.audit.verify()).problems, []);
  });

  test("the audit trail is a hash chain: verify finds an edited, a deleted and a truncated entry", async () => {
    for (let i = 0; i < 5; i++) await control.audit.record({ actor: "test", action: "model.delete", target: `m${i}` });
    assert.equal((await control.audit.verify()).ok, true);
    const edited = control.db
      .prepare("SELECT seq, target FROM audit WHERE action = 'model.delete' ORDER BY seq LIMIT 1")
      .get() as {
      seq: number;
      target: string;
    };
    control.db.prepare("UPDATE audit SET target = 'someone-else' WHERE seq = ?").run(edited.seq);
    const result = await control.audit.verify();
    assert.equal(result.ok, false);
    assert.match(result.problem!, new RegExp(`entry ${edited.seq} .*edited`));
    control.db.prepare("UPDATE audit SET target = ? WHERE seq = ?").run(edited.target, edited.seq);
    assert.equal((await control.audit.verify()).ok, true);

    const backup = control.db.prepare("SELECT * FROM audit WHERE seq = ?").get(edited.seq + 1) as Record<
      string,
      unknown
    >;
    control.db.prepare("DELETE FROM audit WHERE seq = ?").run(edited.seq + 1);
    assert.match((await control.audit.verify()).problem!, /missing|deleted/);
    control.db
      .prepare(
        "INSERT INTO audit VALUES (@seq, @time, @actor, @action, @target, @request_id, @detail, @prev_hash, @hash)",
      )
      .run(backup);
    assert.equal((await control.audit.verify()).ok, true);

    const last = control.db.prepare("SELECT MAX(seq) AS seq FROM audit").get() as { seq: number };
    control.db.prepare("DELETE FROM audit WHERE seq = ?").run(last.seq);
    assert.match((await control.audit.verify()).problem!, /newest entries were deleted/);
  });

  test("nothing secret reaches logs, metrics or the database's non-hash columns", async () => {
    const { secret } = await control.admin.createKey("canary-key", { storeContent: false }, "test");
    const canary = `CANARY-${Date.now()}-do-not-log`;
    const { port, release } = gatedPort({ promptTokens: 3, completionTokens: 4 });
    release();
    const gateway = new Gateway(port, undefined, control);
    const context = { ...contextFor(control, "canary-key"), key: (await control.authenticate(secret))! };
    await drain(gateway.generate(request(`${canary} ${secret}`), context));
    control.completeRequest({
      method: "POST",
      path: "/v1/completions",
      status: 200,
      durationMs: 1,
      requestId: context.requestId,
      api: "openai",
      key: "canary-key",
      bytes: 10,
    });
    // Request completions are written at the end of the event-loop turn.
    await new Promise((resolve) => setImmediate(resolve));
    const metrics = await control.metrics.text();
    const dump = control.db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map(({ name }: { name: string }) => JSON.stringify(control.db.prepare(`SELECT * FROM "${name}"`).all()))
      .join("\n")
      .replace(/"hash":"[0-9a-f]{64}"/g, "");
    for (const text of [logText, metrics, dump]) {
      assert.ok(!text.includes(canary));
      assert.ok(!text.includes(secret));
      assert.ok(!text.includes(secret.slice(3, 20)));
    }
    assert.match(logText, /"key":"canary-key"/);
  });

  test("content is stored only for keys that turn it on, with their retention", async () => {
    const { port, release } = gatedPort({ promptTokens: 3, completionTokens: 4 });
    release();
    control.sqlite.keys.create("replay", { storeContent: true, contentRetentionDays: 7 });
    const gateway = new Gateway(port, undefined, control);
    const context = contextFor(control, "replay");
    await drain(gateway.generate(request("remember me"), context));
    const row = control.db.prepare("SELECT * FROM content WHERE request_id = ?").get(context.requestId) as Record<
      string,
      unknown
    >;
    assert.match(String(row.request), /remember me/);
    assert.equal(row.response, "hello");
    assert.ok(Number(row.expires_ms) - Date.now() > 6.9 * 86_400_000);
    assert.equal(control.sqlite.ledger.expireContent(Date.now() + 8 * 86_400_000), 1);
  });
});
