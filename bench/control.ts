/**
 * Admissions per second of the control plane alone (admit + settle, no model, no HTTP): SQLite in one process, and
 * PostgreSQL with 1, 2 and 4 replica processes sharing one database (issue 17). Each replica runs `--concurrency`
 * requests at a time for `--seconds`, half of them on one shared key with a daily token limit (so admissions
 * contend on its row lock across replicas), half on a key of their own.
 *
 *   node --import tsx bench/control.ts [--seconds 5] [--concurrency 16] [--replicas 1,2,4]
 *
 * PostgreSQL is started by the script (test/helpers/postgres.ts: initdb into a temporary folder, fsync on).
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ControlPlane } from "../src/control/controlPlane.js";
import type { RequestContext } from "../src/core/context.js";
import { startPostgres } from "../test/helpers/postgres.js";

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    concurrency: { type: "string", default: "16" },
    replicas: { type: "string", default: "1,2,4" },
    worker: { type: "string" },
    url: { type: "string" },
    home: { type: "string" },
    name: { type: "string" },
    fsync: { type: "string", default: "on" },
    "synchronous-commit": { type: "string", default: "on" },
  },
});

const target = { provider: "local", model: "bench", remote: false };

async function worker(): Promise<void> {
  const home = values.home!;
  const control = values.url
    ? await ControlPlane.open({ home, databaseUrl: values.url, logLevel: "silent" })
    : new ControlPlane({ home, logLevel: "silent" });
  const shared = await control.store.getKey("shared");
  const own = await control.store.createKey(`own-${values.name}`, {}, { actor: "bench" });
  const seconds = Number(values.seconds);
  const concurrency = Number(values.concurrency);
  // Wait for the parent's go, so every replica measures the same window.
  await new Promise<void>((resolve) => process.once("message", () => resolve()));
  const end = performance.now() + seconds * 1000;
  let done = 0;
  let counter = 0;
  const latencies: number[] = [];
  const loop = async (index: number) => {
    const key = index % 2 === 0 ? shared : own.key;
    while (performance.now() < end) {
      const started = performance.now();
      const context: RequestContext = {
        requestId: `req_${values.name}_${++counter}`,
        api: "openai",
        route: "/v1/completions",
        key: { id: key.id, name: key.name, admin: false, models: null, localOnly: false, storeContent: false },
      };
      const admission = await control.admit({ kind: "generate", promptTokenBound: 20, maxTokens: 10 }, context, target);
      await admission.settle({
        promptTokens: 5,
        completionTokens: 10,
        cachedTokens: 0,
        timeToFirstTokenMs: 1,
        status: 200,
      });
      latencies.push(performance.now() - started);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, index) => loop(index)));
  await control.close();
  latencies.sort((a, b) => a - b);
  process.send!({
    done,
    p50: latencies[Math.floor(latencies.length / 2)],
    p99: latencies[Math.floor(latencies.length * 0.99)],
  });
}

async function run(label: string, replicas: number, url: string | undefined, home: string): Promise<void> {
  const setup = url
    ? await ControlPlane.open({ home, databaseUrl: url, logLevel: "silent" })
    : new ControlPlane({ home, logLevel: "silent" });
  await setup.store.createKey("shared", { dailyTokens: 1_000_000_000_000 }, { actor: "bench" });
  await setup.close();
  const children = Array.from({ length: replicas }, (_, index) =>
    fork(
      import.meta.filename,
      [
        "--worker",
        "1",
        "--home",
        home,
        "--name",
        `r${index}`,
        "--seconds",
        String(values.seconds),
        "--concurrency",
        String(values.concurrency),
        ...(url ? ["--url", url] : []),
      ],
      { execArgv: ["--import", "tsx"] },
    ),
  );
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const results = children.map(
    (child) => new Promise<{ done: number; p50: number; p99: number }>((resolve) => child.once("message", resolve)),
  );
  for (const child of children) child.send("go");
  const all = await Promise.all(results);
  const total = all.reduce((sum, result) => sum + result.done, 0);
  const p50 = Math.max(...all.map((result) => result.p50));
  const p99 = Math.max(...all.map((result) => result.p99));
  console.log(
    `${label.padEnd(28)} ${String(Math.round(total / Number(values.seconds))).padStart(7)} admissions/s   p50 ${p50.toFixed(2)} ms   p99 ${p99.toFixed(2)} ms`,
  );
}

async function main(): Promise<void> {
  if (values.worker) return worker();
  console.log(`concurrency ${values.concurrency} per replica, ${values.seconds} s each`);
  const sqliteHome = mkdtempSync(join(tmpdir(), "freehold-bench-sqlite-"));
  try {
    await run("sqlite, 1 process", 1, undefined, sqliteHome);
  } finally {
    rmSync(sqliteHome, { recursive: true, force: true });
  }
  console.log(`postgres: fsync ${values.fsync}, synchronous_commit ${values["synchronous-commit"]}`);
  const database = await startPostgres({
    fsync: values.fsync === "on",
    synchronousCommit: values["synchronous-commit"] === "on",
  });
  try {
    for (const replicas of String(values.replicas).split(",").map(Number)) {
      const home = mkdtempSync(join(tmpdir(), "freehold-bench-pg-"));
      try {
        await run(
          `postgres, ${replicas} replica${replicas > 1 ? "s" : ""}`,
          replicas,
          database.database(`bench${replicas}`),
          home,
        );
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    }
  } finally {
    database.stop();
  }
}

await main();
