import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import postgres from "postgres";
import { ControlPlane } from "../src/control/controlPlane.js";
import { migrations } from "../src/control/migrations.js";
import { EvalStore } from "../src/eval/store.js";
import type { Suite } from "../src/eval/suite.js";
import { runCli } from "./helpers/cli.js";
import type { FakeUpstream } from "./helpers/fakeUpstream.js";
import { askReplica, fleetAuditKey, startFleetDatabase, stopFleet } from "./helpers/fleet.js";
import { temporaryDirectory } from "./helpers/paths.js";
import { postgresMissing, startPostgres, type TestPostgres } from "./helpers/postgres.js";
import { type ServerProcess, startServerProcess } from "./helpers/server.js";

describe("replicas on one PostgreSQL, as processes", { skip: postgresMissing }, () => {
  const directory = temporaryDirectory("freehold-replicas-");
  let database: TestPostgres;
  let cloud: FakeUpstream;
  let sql: postgres.Sql;
  const replicas: ServerProcess[] = [];
  const config = join(directory.path, "freehold.yaml");
  const auditKey = fleetAuditKey;

  before(async () => {
    ({ database, sql, cloud } = await startFleetDatabase(config));
    // Replicas share the audit key (each has its own home, so its own witness): one chain, one key.
    for (let i = 0; i < 2; i++)
      replicas.push(await startServerProcess({ args: ["--config", config], env: { FREEHOLD_AUDIT_KEY: auditKey } }));
  });
  after(async () => {
    await stopFleet(replicas, { sql, cloud, database });
    directory.dispose();
  });

  const cli = (args: string[]) =>
    runCli(["--config", config, ...args], { env: { FREEHOLD_HOME: directory.path, FREEHOLD_AUDIT_KEY: auditKey } });
  const ask = askReplica;

  test("keys, budget and ledger are one across two replicas, also when one is killed -9 mid-burst", async () => {
    for (const replica of replicas) {
      const ready = await fetch(`${replica.url}/ready`);
      assert.equal(ready.status, 200);
      assert.deepEqual(((await ready.json()) as { database: unknown }).database, {
        engine: "postgres",
        schema_version: migrations.length,
      });
    }
    const created = await cli(["keys", "create", "--name", "team", "--budget-usd", "0.004"]);
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    // A 2×20 burst, half to each replica; replica 1 is killed while answers are in flight.
    const burst = Array.from({ length: 40 }, async (_, index) => {
      const response = await ask(replicas[index % 2]!, key);
      const body = await response.text();
      return { status: response.status, requestId: response.headers.get("x-request-id"), body };
    });
    const settled = Promise.allSettled(burst);
    const deadline = Date.now() + 30_000;
    while (cloud.received.length < 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    replicas[1]!.child.kill("SIGKILL");
    const results = await settled;
    const answered = results.flatMap((result) =>
      result.status === "fulfilled" && result.value.status === 200 ? [result.value] : [],
    );
    const refused = results.flatMap((result) =>
      result.status === "fulfilled" && result.value.status === 429 ? [result.value] : [],
    );
    assert.ok(answered.length > 0, "some requests were answered");
    assert.ok(refused.length > 0, "the shared budget refused some");
    for (const answer of refused) assert.match(answer.body, /budget/);
    // Every answer a client received is in the shared ledger as a success.
    const rows = await sql<{ request_id: string; status: number; cost: number }[]>`SELECT request_id, status,
      cost_usd AS cost FROM ledger WHERE key_name = 'team'`;
    const byId = new Map(rows.map((row) => [row.request_id, row]));
    for (const answer of answered) assert.equal(byId.get(answer.requestId!)?.status, 200, answer.requestId!);
    // The budget was never exceeded, even counting what the killed replica's requests had reserved.
    const spent = rows.reduce((total, row) => total + row.cost, 0);
    assert.ok(spent <= 0.004 + 1e-12, `spent ${spent}`);
    assert.ok(
      cloud.received.filter((request) => request.path.includes("chat")).length >= answered.length,
      "nothing was answered that the cloud did not serve",
    );
    const verified = await cli(["audit", "verify"]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    const status = await cli(["db", "status"]);
    assert.match(status.stdout, /engine\s+postgres/);
    assert.match(status.stdout, new RegExp(`schema\\s+${migrations.length} of ${migrations.length} \\(current\\)`));
  });

  test("a key revoked by another process (the CLI) is refused by a running replica on its next request", async () => {
    const created = await cli(["keys", "create", "--name", "temp"]);
    const key = created.stdout.trim();
    assert.equal((await ask(replicas[0]!, key)).status, 200);
    const revoked = await cli(["keys", "revoke", "temp"]);
    assert.equal(revoked.code, 0, revoked.stderr);
    const refused = await ask(replicas[0]!, key);
    assert.equal(refused.status, 401);
    assert.match(await refused.text(), /revoked/);
  });

  test("without its database a replica is not ready and refuses requests with 503, never unmetered", async () => {
    const key = (await cli(["keys", "create", "--name", "last"])).stdout.trim();
    const sent = cloud.received.length;
    await sql.end({ timeout: 1 });
    database.stop();
    const ready = await fetch(`${replicas[0]!.url}/ready`);
    assert.equal(ready.status, 503);
    assert.match(((await ready.json()) as { reason: string }).reason, /unreachable/);
    const response = await ask(replicas[0]!, key);
    assert.equal(response.status, 503);
    assert.match(await response.text(), /control_plane_unavailable/);
    assert.equal(cloud.received.length, sent, "nothing reached the paid provider");
    const health = await fetch(`${replicas[0]!.url}/health`);
    assert.notEqual(health.status, 0, "liveness still answers");
  });
});

describe("moving a SQLite control plane to PostgreSQL", { skip: postgresMissing }, () => {
  let database: TestPostgres;
  const home = temporaryDirectory("freehold-move-");
  before(async () => {
    database = await startPostgres();
  });
  after(() => {
    database?.stop();
    home.dispose();
  });
  const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    runCli(args, { env: { FREEHOLD_HOME: home.path, ...env } });

  test("db migrate --to copies keys, ledger, audit and evaluation runs, verifying the chain on both sides", async () => {
    let movedRun: { id: string; identity: string; results: unknown[] } | undefined;
    const secret = (await cli(["keys", "create", "--name", "old-key", "--daily-tokens", "1000"])).stdout.trim();
    const control = new ControlPlane({ home: home.path, logLevel: "silent" });
    try {
      const context = {
        requestId: "req_before_move",
        api: "openai" as const,
        route: "/v1/completions",
        key: (await control.authenticate(secret))!,
      };
      const admission = await control.admit({ kind: "generate", promptTokenBound: 10, maxTokens: 10 }, context, {
        provider: "local",
        model: "stories",
        remote: false,
      });
      await admission.settle({
        promptTokens: 4,
        completionTokens: 6,
        cachedTokens: 0,
        timeToFirstTokenMs: 1,
        status: 200,
      });
      await control.audit.record({ actor: "test", action: "model.delete", target: "m" });
      // An evaluation run, half done: it moves too, and continues on PostgreSQL.
      const evals = new EvalStore(control.store.evals);
      const run = await evals.create({ name: "moved" } as Suite, ["stories"], null, 1, 1_700_000_000_000);
      await evals.save(run.id, {
        model: "stories",
        caseId: "one",
        repeat: 0,
        output: "Lily",
        error: null,
        pass: true,
        assertions: [{ type: "contains", pass: true }],
        promptTokens: 4,
        completionTokens: 6,
        ttftMs: 3.5,
        durationMs: 20,
        costUsd: 0.0001,
        servedBy: { provider: "local", model: "stories", remote: false },
      });
      await evals.saveReference(run.id, "stories", "one", "reference");
      movedRun = { id: run.id, identity: run.identity, results: await evals.results(run.id) };
    } finally {
      await control.close();
    }
    const url = database.database("moved");
    const moved = await cli(["db", "migrate", "--to", url]);
    assert.equal(moved.code, 0, moved.stderr);
    // audit.keyed (the trail's first entry keys it), key.create, model.delete.
    assert.match(moved.stdout, /audit chain verified on both sides \(3 entries/);
    const target = await ControlPlane.open({ home: home.path, databaseUrl: url, logLevel: "silent" });
    try {
      const movedEvals = new EvalStore(target.store.evals);
      assert.equal((await movedEvals.unfinished(movedRun!.identity))?.id, movedRun!.id);
      assert.deepEqual(await movedEvals.results(movedRun!.id), movedRun!.results);
      assert.equal(await movedEvals.reference(movedRun!.id, "stories", "one"), "reference");
      assert.equal((await target.authenticate(secret))?.name, "old-key");
      const rows = await target.store.ledgerRows();
      assert.deepEqual(
        rows.map((row) => [row.requestId, row.promptTokens + row.completionTokens]),
        [["req_before_move", 10]],
      );
      // The day's usage moved with the key: its limit counts what was used before the move.
      const context = {
        requestId: "req_after_move",
        api: "openai" as const,
        route: "/v1/completions",
        key: (await target.authenticate(secret))!,
      };
      await assert.rejects(
        target.admit({ kind: "generate", promptTokenBound: 500, maxTokens: 495 }, context, {
          provider: "local",
          model: "stories",
          remote: false,
        }),
        /10 used/,
      );
      // The copy is checked on PostgreSQL as on SQLite: with the same key and witness, and a change made there
      // directly is found. (Nothing is appended here: the SQLite file must still verify for the refusal below.)
      assert.deepEqual((await target.audit.verify()).problems, []);
      const sql = postgres(url, { max: 1, onnotice: () => {} });
      try {
        await sql`UPDATE keys SET daily_tokens = 1000000 WHERE name = 'old-key'`;
        const tampered = await target.audit.verify();
        assert.ok(
          tampered.problems.some((problem) =>
            /daily(Tokens)? is 1000000 in the database but 1000 in the trail/.test(problem),
          ),
          tampered.problems.join(" | "),
        );
        await sql`UPDATE keys SET daily_tokens = 1000 WHERE name = 'old-key'`;
      } finally {
        await sql.end({ timeout: 1 });
      }
    } finally {
      await target.close();
    }
    const status = await cli(["db", "status"], { FREEHOLD_DATABASE_URL: url });
    assert.match(status.stdout, /engine\s+postgres/);
    assert.match(status.stdout, /keys\s+1 \(1 active\)/);
    const again = await cli(["db", "migrate", "--to", url]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /empty control plane/);
  });

  test("a SQLite trail that does not verify is not copied", async () => {
    const db = new Database(join(home.path, "freehold.db"));
    db.prepare("UPDATE audit SET target = 'edited' WHERE seq = 1").run();
    db.close();
    const refused = await cli(["db", "migrate", "--to", database.database("refused")]);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /does not verify/);
    const bad = await cli(["db", "migrate", "--to", "mysql://x@y/z"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--to must be a postgres/);
  });
});
