import assert from "node:assert/strict";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import postgres from "postgres";
import { ControlPlane } from "../src/control/controlPlane.js";
import { SqliteStore } from "../src/control/sqliteStore.js";
import type { ControlStore } from "../src/control/store.js";
import { EvalStore } from "../src/eval/store.js";
import type { Suite } from "../src/eval/suite.js";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { runCli } from "./helpers/cli.js";
import { type FakeCloud, startFakeCloud } from "./helpers/fakeCloud.js";
import { temporaryDirectory } from "./helpers/paths.js";
import { postgresMissing, startPostgres, type TestPostgres } from "./helpers/postgres.js";
import { type ServerProcess, startServerProcess } from "./helpers/server.js";

const suiteText = `
name: pg-suite
threshold: 0.5
defaults:
  max_tokens: 10
cases:
  - id: Upper
    prompt: Once upon a time
    assert: [{ type: contains, value: Lily }]
  - id: lower
    prompt: Tell me a story
    assert: [{ type: contains, value: Lily }]
  - id: dragon
    prompt: Once upon a time
    assert: [{ type: contains, value: dragon }]
`;

describe("CLI commands and evaluations on a PostgreSQL control plane", { skip: postgresMissing }, () => {
  const home = temporaryDirectory("freehold-pg-cli-");
  const auditKey = "cli-test-audit-key-the-server-and-the-cli-share";
  let database: TestPostgres;
  let url: string;
  let sql: postgres.Sql;
  let cloud: FakeCloud;
  let env: NodeJS.ProcessEnv;
  const suitePath = join(home.path, "suite.yaml");
  const configPath = join(home.path, "freehold.yaml");
  const sqliteFile = join(home.path, "freehold.db");

  before(async () => {
    database = await startPostgres();
    url = database.database("clis");
    sql = postgres(url, { max: 2, onnotice: () => {} });
    cloud = await startFakeCloud({ answer: () => ", there was a little girl named Lily", judge: () => true });
    env = {
      FREEHOLD_HOME: home.path,
      FREEHOLD_DATABASE_URL: url,
      FREEHOLD_AUDIT_KEY: auditKey,
      FREEHOLD_LOG_LEVEL: "warn",
    };
    writeFileSync(suitePath, suiteText);
    writeFileSync(
      configPath,
      [
        "providers:",
        `  cloud: { kind: openai, base_url: "${cloud.base}" }`,
        "routes:",
        "  smart: { privacy: allow, targets: [{ provider: cloud, model: gpt-4o-mini }] }",
        "",
      ].join("\n"),
    );
  });
  after(async () => {
    await sql?.end({ timeout: 1 });
    await cloud?.close();
    database?.stop();
    home.dispose();
  });

  const cli = (args: string[], timeoutMs = 120_000) => runCli(["--config", configPath, ...args], { env, timeoutMs });

  /** Audit rows a model command left in the home's SQLite file (there should be none with a database URL). */
  function sqliteAudit(action: string): number {
    if (!existsSync(sqliteFile)) return 0;
    const db = new Database(sqliteFile, { readonly: true });
    try {
      return (db.prepare("SELECT COUNT(*) AS n FROM audit WHERE action = ?").get(action) as { n: number }).n;
    } finally {
      db.close();
    }
  }

  test("model commands (import, cp, create, rm) audit to PostgreSQL, not to the home's SQLite file, and the chain verifies", async () => {
    const file = join(home.path, "tiny.gguf");
    writeSyntheticModel(file, { preset: "tiny", quant: "f32", seed: 3 });
    const imported = await cli(["import", file, "--name", "tiny"]);
    assert.equal(imported.code, 0, imported.stderr);
    assert.doesNotMatch(imported.stderr, /not recorded/);
    const copied = await cli(["cp", "tiny", "tiny-copy"]);
    assert.equal(copied.code, 0, copied.stderr);
    const profile = join(home.path, "Modelfile.yaml");
    writeFileSync(profile, "from: tiny\nparameters: { temperature: 0.2 }\n");
    const created = await cli(["create", "tiny-cold", "-f", profile]);
    assert.equal(created.code, 0, created.stderr);
    const removed = await cli(["rm", "tiny-copy"]);
    assert.equal(removed.code, 0, removed.stderr);

    const rows = await sql<{ actor: string; action: string; target: string }[]>`SELECT actor, action, target
      FROM audit WHERE action LIKE 'model.%' ORDER BY seq`;
    assert.deepEqual(
      rows.map((row) => [row.action, row.target.replace(/:latest$/, "")]),
      [
        ["model.import", "tiny"],
        ["model.copy", "tiny-copy"],
        ["model.create", "tiny-cold"],
        ["model.delete", "tiny-copy"],
      ],
    );
    for (const row of rows) assert.match(row.actor, /^cli:/);
    for (const action of ["model.import", "model.copy", "model.create", "model.delete"])
      assert.equal(sqliteAudit(action), 0, `${action} went to the SQLite file`);
    const verified = await cli(["audit", "verify"]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /audit trail intact: 5 entries, keyed/);
  });

  test("a model command that cannot reach the database still succeeds, with a warning naming what was not audited", async () => {
    const file = join(home.path, "tiny2.gguf");
    writeSyntheticModel(file, { preset: "tiny", quant: "f32", seed: 4 });
    const dead = "postgres://freehold@127.0.0.1:1/nowhere";
    const result = await runCli(["import", file, "--name", "tiny2"], {
      env: { ...env, FREEHOLD_DATABASE_URL: dead },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /warning: model\.import tiny2\S* was not recorded in the audit trail: .*unreachable/);
    assert.equal(sqliteAudit("model.import"), 0, "it did not fall back to the SQLite file");
  });

  test("freehold eval runs on PostgreSQL: stored there, resumed from there, listed by the server's eval routes", async () => {
    const first = await cli(["eval", suitePath, "--models", "cloud/gpt-4o-mini,smart", "--concurrency", "2", "--json"]);
    assert.equal(first.code, 0, first.stderr);
    const summary = JSON.parse(first.stdout) as { runId: string; models: { model: string; passes: number }[] };
    assert.deepEqual(
      summary.models.map((model) => [model.model, model.passes]),
      [
        ["cloud/gpt-4o-mini", 2],
        ["smart", 2],
      ],
    );
    const [run] = await sql<{ id: string; finished_ms: number | null }[]>`SELECT id, finished_ms FROM eval_runs`;
    assert.equal(run?.id, summary.runId);
    assert.ok(run?.finished_ms, "the run is finished in PostgreSQL");
    const stored = await sql<{ n: number }[]>`SELECT COUNT(*)::int AS n FROM eval_results WHERE run_id = ${run.id}`;
    assert.equal(stored[0]!.n, 6);
    if (existsSync(sqliteFile)) {
      const db = new Database(sqliteFile, { readonly: true });
      try {
        assert.equal((db.prepare("SELECT COUNT(*) AS n FROM eval_runs").get() as { n: number }).n, 0);
      } finally {
        db.close();
      }
    }

    // An interrupted run (its end and two answers lost) continues from PostgreSQL: only the missing answers are asked.
    await sql`UPDATE eval_runs SET finished_ms = NULL WHERE id = ${run.id}`;
    await sql`DELETE FROM eval_results WHERE run_id = ${run.id} AND case_id = 'Upper'`;
    const asked = cloud.requests.length;
    const resumed = await cli(["eval", suitePath, "--models", "cloud/gpt-4o-mini,smart", "--json"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, new RegExp(`continuing run ${run.id} \\(4 answers already stored\\)`));
    assert.equal(cloud.requests.length - asked, 2, "only the two missing answers were asked again");
    const again = JSON.parse(resumed.stdout) as typeof summary;
    assert.equal(again.runId, run.id);
    assert.deepEqual(
      again.models.map((model) => model.passes),
      summary.models.map((model) => model.passes),
    );

    // --from-ledger reads the stored content from PostgreSQL.
    const request = (prompt: string) =>
      JSON.stringify({ kind: "completion", model: "smart", prompt, sampling: {}, limits: { maxTokens: 10 } });
    const now = Date.now();
    await sql`INSERT INTO content (request_id, key_id, time_ms, expires_ms, request, response) VALUES
      ('req_pg_a', 'key_x', ${now - 1000}, NULL, ${request("Once upon a time")}, ', there was a little girl named Lily'),
      ('req_pg_b', 'key_x', ${now - 500}, NULL, ${request("Tell me")}, ', there was a little girl named Lily')`;
    const replay = await cli([
      "eval",
      "--from-ledger",
      "--route",
      "smart",
      "--judge",
      "cloud/judge",
      "--models",
      "cloud/gpt-4o-mini",
      "--json",
    ]);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stderr, /replaying 2 of 2 stored requests to smart/);

    // A server on the same database lists both runs and renders the report (the console's evaluations page).
    let server: ServerProcess | undefined;
    try {
      server = await startServerProcess({
        args: ["--config", configPath],
        env: { FREEHOLD_DATABASE_URL: url, FREEHOLD_AUDIT_KEY: auditKey },
      });
      const listed = await fetch(`${server.url}/admin/evals`);
      assert.equal(listed.status, 200);
      const body = (await listed.json()) as { data: { id: string; suite: string; answers: number }[] };
      assert.equal(body.data.length, 2);
      const listedRun = body.data.find((entry) => entry.id === run.id);
      assert.deepEqual([listedRun?.suite, listedRun?.answers], ["pg-suite", 6]);
      const report = await fetch(`${server.url}/admin/evals/${run.id}/report`);
      assert.equal(report.status, 200);
      assert.match(await report.text(), /pg-suite/);
      const missing = await fetch(`${server.url}/admin/evals/eval_nope/report`);
      assert.equal(missing.status, 404);
    } finally {
      await server?.dispose();
    }
  });

  test("evaluation runs read back the same from SQLite and PostgreSQL (order, numbers, nulls)", async () => {
    const suite: Suite = { name: "same", threshold: 0.5, repeat: 2, cases: [] } as unknown as Suite;
    const sqlite = new SqliteStore(temporaryDirectory("freehold-evalrows-").path);
    const pg = await ControlPlane.open({
      home: home.path,
      databaseUrl: database.database("evalrows"),
      logLevel: "silent",
    });
    const write = async (store: ControlStore) => {
      const evals = new EvalStore(store.evals);
      const run = await evals.create(suite, ["b", "B", "a"], "a", 2, 1_700_000_000_000);
      // Byte order puts "B" before "a" before "b"; a locale's collation would not.
      for (const model of ["b", "B", "a"])
        for (const caseId of ["z", "Z", "é"])
          for (const repeat of [1, 0])
            await evals.save(
              run.id,
              {
                model,
                caseId,
                repeat,
                output: `${model}${caseId}${repeat}`,
                error: repeat ? "timeout" : null,
                pass: repeat === 0,
                assertions: [{ type: "contains", pass: repeat === 0, detail: "d" }],
                promptTokens: 7,
                completionTokens: 2 ** 40,
                ttftMs: repeat ? null : 12.5,
                durationMs: 100.25,
                costUsd: repeat ? null : 0.000123,
                servedBy: repeat ? null : { provider: "cloud", model: "gpt", remote: true },
              },
              1_700_000_000_001,
            );
      // Saving an answer again replaces it.
      await evals.save(run.id, {
        ...(await evals.results(run.id))[0]!,
        output: "replaced",
      });
      await evals.saveReference(run.id, "a", "z", "ref");
      await evals.saveReference(run.id, "a", "z", "ref2");
      const unfinished = (await evals.unfinished(run.identity))?.id;
      await evals.finish(run.id, 1_700_000_000_002);
      return {
        unfinished: unfinished === run.id,
        after: await evals.unfinished(run.identity),
        run: { ...(await evals.get(run.id))!, id: "" },
        results: await evals.results(run.id),
        reference: await evals.reference(run.id, "a", "z"),
        none: await evals.reference(run.id, "a", "nope"),
        list: (await evals.list(5)).map((entry) => ({ ...entry, id: "" })),
      };
    };
    try {
      const fromSqlite = await write(sqlite);
      const fromPostgres = await write(pg.store);
      assert.deepEqual(fromPostgres, fromSqlite);
      assert.deepEqual(
        fromSqlite.results.slice(0, 3).map((result) => [result.model, result.caseId, result.repeat]),
        [
          ["B", "Z", 0],
          ["B", "Z", 1],
          ["B", "z", 0],
        ],
      );
      assert.equal(fromSqlite.results[0]!.output, "replaced");
      assert.equal(fromSqlite.reference, "ref2");
    } finally {
      await sqlite.close();
      await pg.close();
    }
  });
});
