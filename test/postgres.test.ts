import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import postgres from "postgres";
import { ControlPlane } from "../src/control/controlPlane.js";
import { migrations, postgresMigrations } from "../src/control/migrations.js";
import { SqliteStore } from "../src/control/sqliteStore.js";
import type { ChatEvent, GenerateRequest, ModelPort } from "../src/core/chat.js";
import type { RequestContext } from "../src/core/context.js";
import { AuthenticationError, RateLimitError, UnavailableError } from "../src/core/errors.js";
import { Gateway } from "../src/gateway/gateway.js";
import { temporaryDirectory } from "./helpers/paths.js";
import { postgresMissing, startPostgres, type TestPostgres } from "./helpers/postgres.js";

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
    // The prompt's own count: keys with token limits reserve it (tokenized) plus max_tokens.
    countTokens: () => Promise.resolve(7),
  };
  return { port, release: () => open(), started: () => started };
}

const prompt = "Once upon a time";
function request(maxTokens = 20): GenerateRequest {
  return { kind: "completion", model: "stories", prompt, sampling: {}, limits: { maxTokens } };
}

let counter = 0;
async function contextFor(control: ControlPlane, keyName: string): Promise<RequestContext> {
  const record = await control.store.getKey(keyName);
  return {
    requestId: `req_pg_${process.pid}_${++counter}`,
    api: "openai",
    route: "/v1/completions",
    key: {
      id: record.id,
      name: record.name,
      admin: record.admin,
      models: record.models,
      localOnly: record.localOnly,
      storeContent: record.storeContent,
    },
  };
}

async function drain(events: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const out: ChatEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

describe("control plane on PostgreSQL: two replicas, one database", { skip: postgresMissing }, () => {
  const home = temporaryDirectory("freehold-pg-home-");
  let server: TestPostgres;
  let url: string;
  let a: ControlPlane;
  let b: ControlPlane;
  let sql: postgres.Sql;

  before(async () => {
    server = await startPostgres();
    url = server.database("replicas");
    // Both replicas open (and so migrate) at once: the advisory lock makes one of them do it.
    [a, b] = await Promise.all([
      ControlPlane.open({ home: home.path, databaseUrl: url, logLevel: "silent" }),
      ControlPlane.open({ home: home.path, databaseUrl: url, logLevel: "silent" }),
    ]);
    sql = postgres(url, { max: 2, onnotice: () => {} });
  });
  after(async () => {
    await sql?.end({ timeout: 1 });
    await a?.close();
    await b?.close();
    server?.stop();
    home.dispose();
  });

  test("the PostgreSQL schema has SQLite's versions, tables and columns", async () => {
    assert.equal(postgresMigrations.length, migrations.length);
    const sqlite = new SqliteStore(temporaryDirectory("freehold-schema-").path);
    try {
      const tables = sqlite.db
        .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .all()
        .map((row) => row.name);
      for (const table of tables) {
        const sqliteColumns = sqlite.db
          .prepare<[], { name: string }>(`PRAGMA table_info("${table}")`)
          .all()
          .map((row) => row.name)
          .sort();
        const pgColumns = (
          await sql<{ column_name: string }[]>`SELECT column_name FROM information_schema.columns
            WHERE table_schema = 'public' AND table_name = ${table}`
        )
          .map((row) => row.column_name)
          .sort();
        assert.deepEqual(pgColumns, sqliteColumns, `table ${table}`);
      }
      assert.deepEqual((await a.store.status()).schemaVersion, migrations.length);
      assert.equal((await a.ready()).engine, "postgres");
    } finally {
      await sqlite.close();
    }
  });

  test("a key made on one replica works on the other; revoked there, it stops at once on both", async () => {
    const { secret } = await a.admin.createKey("shared", {}, "test");
    assert.equal((await b.authenticate(secret))?.name, "shared");
    const context = await contextFor(b, "shared");
    await b.admin.revokeKey("shared", "test");
    await assert.rejects(a.authenticate(secret), (e: unknown) => e instanceof AuthenticationError);
    // A request authenticated just before the revocation is refused at admission (the key row is re-read there).
    await assert.rejects(
      a.admit({ kind: "generate", promptTokenBound: 10, maxTokens: 10 }, context, {
        provider: "local",
        model: "stories",
        remote: false,
      }),
      (e: unknown) => e instanceof AuthenticationError && e.code === "key_revoked",
    );
    await assert.rejects(
      a.admin.createKey("shared!", {}, "test"),
      (e: unknown) => (e as { param?: string }).param === "name",
    );
  });

  test("a daily token limit shared by two replicas holds under a 2×20 burst; the ledger equals what ran", async () => {
    const gated = gatedPort({ promptTokens: 7, completionTokens: 13 });
    const worst = 7 + 20;
    await a.admin.createKey("burst", { dailyTokens: worst * 10 }, "test");
    const gateways = [new Gateway(gated.port, undefined, a), new Gateway(gated.port, undefined, b)];
    const attempts = Array.from({ length: 40 }, async (_, index) => {
      const replica = index % 2 === 0 ? a : b;
      const iterator = gateways[index % 2]!.generate(request(), await contextFor(replica, "burst"))[
        Symbol.asyncIterator
      ]();
      return iterator.next().then(
        async (first) => ({
          ok: true as const,
          rest: [first.value, ...(await drain({ [Symbol.asyncIterator]: () => iterator }))],
        }),
        (error: unknown) => ({ ok: false as const, error }),
      );
    });
    // Wait until every request was either admitted (and is held at the gate) or refused.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const [{ n } = { n: 0 }] = await sql<{ n: number }[]>`SELECT COUNT(*)::int AS n FROM ledger WHERE status = 429
        AND key_name = 'burst'`;
      if (n + gated.started() >= 40 || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(gated.started(), 10, "exactly ten generations started across both replicas");
    gated.release();
    const results = await Promise.all(attempts);
    assert.equal(results.filter((result) => result.ok).length, 10);
    for (const result of results.filter((result) => !result.ok))
      assert.ok(result.error instanceof RateLimitError && result.error.code === "daily_tokens_exceeded");
    const [ledger] = await sql<{ n: number; tokens: number }[]>`SELECT COUNT(*)::int AS n,
      SUM(prompt_tokens + completion_tokens)::int AS tokens FROM ledger WHERE key_name = 'burst' AND status = 200`;
    assert.deepEqual({ ...ledger }, { n: 10, tokens: 200 });
    const [totals] = await sql<{ tokens: number }[]>`SELECT SUM(tokens)::int AS tokens FROM usage_totals
      WHERE key_id = (SELECT id FROM keys WHERE name = 'burst') AND period LIKE 'day:%'`;
    assert.equal(totals!.tokens, 200, "enforcement reads the totals the ledger wrote");
    const [open] = await sql<{ n: number }[]>`SELECT COUNT(*)::int AS n FROM reservations`;
    assert.equal(open!.n, 0, "every reservation was settled");
  });

  test("a USD budget shared by two replicas is never exceeded by a 2×20 burst of admissions", async () => {
    await b.admin.createKey("spender", { budgetUsd: 0.035 }, "test");
    const target = { provider: "openai", model: "gpt-4o", remote: true };
    // Worst case each: 1000 prompt tokens ($0.0025) + 100 output ($0.001) = $0.0035, so ten fit in $0.035.
    const admissions = await Promise.allSettled(
      Array.from({ length: 40 }, async (_, index) => {
        const replica = index % 2 === 0 ? a : b;
        return replica.admit(
          { kind: "generate", promptTokenBound: 1000, maxTokens: 100 },
          await contextFor(replica, "spender"),
          target,
        );
      }),
    );
    const admitted = admissions.filter((result) => result.status === "fulfilled");
    assert.equal(admitted.length, 10);
    for (const result of admissions)
      if (result.status === "rejected")
        assert.ok(result.reason instanceof RateLimitError && result.reason.code === "budget_exceeded");
    await Promise.all(
      admitted.map((result) =>
        result.value.settle({
          promptTokens: 800,
          completionTokens: 50,
          cachedTokens: 0,
          timeToFirstTokenMs: 1,
          status: 200,
        }),
      ),
    );
    const [line] = await a.admin.usage({ by: "key", key: "spender" });
    assert.ok(line);
    assert.equal(line.requests, 40);
    assert.ok(Math.abs(line.remoteCostUsd - (10 * (800 * 2.5 + 50 * 10)) / 1e6) < 1e-12);
    const [month] = await sql<{ cost: number }[]>`SELECT cost_usd AS cost FROM usage_totals
      WHERE key_id = (SELECT id FROM keys WHERE name = 'spender') AND period LIKE 'month:%'`;
    assert.ok(Math.abs(month!.cost - line.remoteCostUsd) < 1e-12, "the budget's total equals the ledger's");
  });

  test("the audit trail stays one chain with both replicas writing at once", async () => {
    const before = (await a.audit.verify()).entries;
    await Promise.all(
      Array.from({ length: 60 }, (_, index) => {
        const replica = index % 2 === 0 ? a : b;
        if (index % 3 === 0)
          return replica.audit.record({ actor: "test", action: "model.delete", target: `m${index}` });
        replica.audit.recordSoon({ actor: "router", action: "route.served", requestId: `req_audit_${index}` });
        return Promise.resolve();
      }),
    );
    await Promise.all([a.audit.flush(), b.audit.flush()]);
    const verification = await b.audit.verify();
    assert.equal(verification.ok, true, verification.problem);
    assert.equal(verification.entries, before + 60);
    // Tampering is found on PostgreSQL too.
    await sql`UPDATE audit SET target = 'someone-else' WHERE seq = ${before + 1}`;
    const broken = await a.audit.verify();
    assert.equal(broken.ok, false);
    assert.match(broken.problem!, new RegExp(`entry ${before + 1} .*edited`));
  });

  test("a replica that loses the database refuses requests with a 503 naming it, never unmetered", async () => {
    const lost = await startPostgres();
    let stopped = false;
    const replica = await ControlPlane.open({
      home: home.path,
      databaseUrl: lost.database("doomed").replace("freehold@", "freehold:s3cret-pw@"),
      logLevel: "silent",
    });
    try {
      const { secret } = await replica.admin.createKey("lonely", {}, "test");
      const context = await contextFor(replica, "lonely");
      lost.stop();
      stopped = true;
      const unavailable = (e: unknown) =>
        e instanceof UnavailableError &&
        e.status === 503 &&
        e.code === "control_plane_unavailable" &&
        !e.message.includes("s3cret-pw");
      await assert.rejects(replica.authenticate(secret), unavailable);
      await assert.rejects(
        replica.admit({ kind: "generate", promptTokenBound: 10, maxTokens: 10 }, context, {
          provider: "local",
          model: "stories",
          remote: false,
        }),
        unavailable,
      );
      await assert.rejects(replica.ready(), unavailable);
    } finally {
      if (!stopped) lost.stop();
      await replica.close();
    }
  });
});
