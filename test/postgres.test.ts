import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import postgres from "postgres";
import type { AuditRow } from "../src/control/audit.js";
import { ControlPlane } from "../src/control/controlPlane.js";
import { migrations, postgresMigrations } from "../src/control/migrations.js";
import { SqliteStore } from "../src/control/sqliteStore.js";
import type { ChatEvent, GenerateRequest, ModelPort } from "../src/core/chat.js";
import type { RequestContext } from "../src/core/context.js";
import { AuthenticationError, RateLimitError, UnavailableError } from "../src/core/errors.js";
import { Gateway } from "../src/gateway/gateway.js";
import { requestContext } from "./helpers/controlPlane.js";
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

/** What a database writer without the audit key can compute: the pre-keying scheme, plain SHA-256 of the fields. */
function plainChainHash(row: AuditRow): string {
  const fields = [row.seq, row.time, row.actor, row.action, row.target, row.request_id, row.detail, row.prev_hash];
  return createHash("sha256").update(JSON.stringify(fields)).digest("hex");
}

const prompt = "Once upon a time";
function request(maxTokens = 20): GenerateRequest {
  return { kind: "completion", model: "stories", prompt, sampling: {}, limits: { maxTokens } };
}

const contextFor = async (control: ControlPlane, keyName: string): Promise<RequestContext> =>
  requestContext(await control.store.getKey(keyName), "/v1/completions", `req_pg_${process.pid}`);

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
        const context = await contextFor(replica, "spender");
        const admission = await replica.admit(
          { kind: "generate", promptTokenBound: 1000, maxTokens: 100 },
          context,
          target,
        );
        // As the router does for every remote request (verify cross-checks remote ledger rows against these).
        replica.audit.recordSoon({ actor: "spender", action: "route.served", requestId: context.requestId });
        return admission;
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

  test("the trail on PostgreSQL is keyed as on SQLite: forgeries, a cut end and direct key changes are found", async () => {
    const own = temporaryDirectory("freehold-pg-keyed-");
    const keyedUrl = server.database("keyed");
    const replica = await ControlPlane.open({ home: own.path, databaseUrl: keyedUrl, logLevel: "silent" });
    const db = postgres(keyedUrl, { max: 1, onnotice: () => {} });
    try {
      await replica.admin.createKey("audited", { rpm: 5 }, "test", "the app");
      for (let i = 0; i < 4; i++)
        await replica.audit.record({ actor: "test", action: "model.delete", target: `m${i}` });
      const intact = await replica.audit.verify();
      assert.deepEqual(intact.problems, []);
      assert.equal(intact.keyed, true);
      const first = await db<{ action: string }[]>`SELECT action FROM audit ORDER BY seq LIMIT 1`;
      assert.equal(first[0]!.action, "audit.keyed", "a new trail is keyed from its first entry");

      // Someone who can write the database but has no key re-chains an edit (plain SHA-256): found.
      const rows = await db<AuditRow[]>`SELECT * FROM audit ORDER BY seq`;
      const forged = { ...rows[3]!, target: "someone-else" };
      forged.hash = plainChainHash(forged);
      await db`UPDATE audit SET target = ${forged.target}, hash = ${forged.hash} WHERE seq = ${forged.seq}`;
      const edited = await replica.audit.verify();
      assert.ok(edited.problems.some((problem) => /entry 4 .*forged without the audit key/.test(problem)));
      await db`UPDATE audit SET target = ${rows[3]!.target}, hash = ${rows[3]!.hash} WHERE seq = ${forged.seq}`;

      // A key added, or changed, directly in the database is named.
      await db`UPDATE keys SET rpm = 5000 WHERE name = 'audited'`;
      const changed = await replica.audit.verify();
      assert.ok(
        changed.problems.some((problem) => /audited .*rpm is 5000 in the database but 5 in the trail/.test(problem)),
      );
      await db`UPDATE keys SET rpm = 5 WHERE name = 'audited'`;

      // Cutting the end, with the head row made to agree, is caught by the witness beside the key.
      const kept = await replica.audit.exportHead("test");
      await db`DELETE FROM audit WHERE seq > ${kept.seq - 2}`;
      await db`UPDATE audit_head SET seq = ${kept.seq - 2}, hash = ${rows[kept.seq - 3]!.hash} WHERE id = 1`;
      const cut = await replica.audit.verify({ head: kept });
      assert.ok(
        cut.problems.some((problem) => /the trail ends at entry \d+ but the witness .* records entry/.test(problem)),
        cut.problems.join(" | "),
      );
      assert.ok(cut.problems.some((problem) => /the head you kept/.test(problem)));
      // The next write records the cut; once explained, the owner acknowledges it.
      await replica.audit.record({ actor: "test", action: "model.delete", target: "after-cut" });
      const recorded = await replica.audit.list({ action: "audit.cut" });
      assert.equal(recorded.length, 1);
      assert.ok((await replica.audit.verify()).problems.some((problem) => /found cut/.test(problem)));
      await replica.audit.acknowledge(recorded[0]!.seq, "test", "the test cut it");
      assert.deepEqual((await replica.audit.verify()).problems, []);

      // A replica with another audit key would write entries nobody can check: it does not start.
      await assert.rejects(
        ControlPlane.open({
          home: own.path,
          databaseUrl: keyedUrl,
          logLevel: "silent",
          audit: { file: join(own.path, "other.key"), secret: "another-audit-key-of-at-least-32-chars" },
        }),
        /keyed with audit key [0-9a-f]{16}, but this replica's key \(FREEHOLD_AUDIT_KEY\) is [0-9a-f]{16}: give every replica the same key/,
      );
    } finally {
      await db.end({ timeout: 1 });
      await replica.close();
      own.dispose();
    }
  });

  test("a home used with SQLite first, then with PostgreSQL: each trail has its own witness, no false cut", async () => {
    const own = temporaryDirectory("freehold-pg-witness-");
    const url = server.database("witness");
    try {
      // The home's own SQLite trail, under the home's audit key, with its witness written.
      const local = new ControlPlane({ home: own.path, logLevel: "silent" });
      for (let i = 0; i < 3; i++) await local.audit.record({ actor: "test", action: "model.delete", target: `l${i}` });
      await local.close();
      // The same home (and key) pointed at a PostgreSQL trail that never saw those entries.
      const replica = await ControlPlane.open({ home: own.path, databaseUrl: url, logLevel: "silent" });
      try {
        await replica.audit.record({ actor: "test", action: "model.delete", target: "p0" });
        await replica.audit.record({ actor: "test", action: "model.delete", target: "p1" });
        const verification = await replica.audit.verify();
        assert.deepEqual(verification.problems, [], "the SQLite trail's witness says nothing about this database");
        const cuts = await replica.audit.list({ limit: 100, action: "audit.cut" });
        assert.equal(cuts.length, 0, "no cut recorded");
      } finally {
        await replica.close();
      }
      // And the SQLite trail still verifies against its own witness.
      const again = new ControlPlane({ home: own.path, logLevel: "silent" });
      try {
        assert.deepEqual((await again.audit.verify()).problems, []);
      } finally {
        await again.close();
      }
    } finally {
      own.dispose();
    }
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
