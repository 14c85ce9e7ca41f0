import { writeFileSync } from "node:fs";
import postgres from "postgres";
import { type FakeUpstream, startFakeUpstream } from "./fakeUpstream.js";
import { startPostgres, type TestPostgres } from "./postgres.js";
import type { ServerProcess } from "./server.js";

/** The audit key every replica of a fleet test shares (one chain, one key; each home has its own witness). */
export const fleetAuditKey = "replica-test-audit-key-shared-by-every-replica";

/** What the replica tests share: one PostgreSQL database, a slow fake paid cloud, and a freehold.yaml naming both. */
export interface FleetDatabase {
  database: TestPostgres;
  url: string;
  /** A connection of the test's own, to read what the replicas wrote. */
  sql: postgres.Sql;
  cloud: FakeUpstream;
}

/** Starts the database and the cloud and writes `config` (route `paid` → the cloud's gpt-4o). */
export async function startFleetDatabase(config: string): Promise<FleetDatabase> {
  const database = await startPostgres();
  const url = database.database("fleet");
  const sql = postgres(url, { max: 2, onnotice: () => {} });
  // Every answer takes a while, so a burst is in flight when a replica is killed.
  const cloud = await startFakeUpstream(() => ({ kind: "reply", text: "hello there", delayMs: 400 }));
  writeFileSync(
    config,
    [
      `database: { url: "${url}" }`,
      "providers:",
      `  cloud: { kind: openai, base_url: "${cloud.openaiBase}", api_key: sk-replica-test-000000000000 }`,
      "routes:",
      "  paid: { privacy: allow, targets: [{ provider: cloud, model: gpt-4o }] }",
      "",
    ].join("\n"),
  );
  return { database, url, sql, cloud };
}

/** Replicas first (they hold connections), then the test's connection, the cloud and the database. */
export async function stopFleet(replicas: ServerProcess[], fleet: Partial<FleetDatabase>): Promise<void> {
  for (const replica of replicas) await replica.dispose();
  await fleet.sql?.end({ timeout: 1 });
  await fleet.cloud?.close();
  fleet.database?.stop();
}

/** One chat request for `model` (default the paid route) with a key. */
export function askReplica(replica: ServerProcess, key: string, model = "paid"): Promise<Response> {
  return fetch(`${replica.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
    body: JSON.stringify({ model, messages: [{ role: "user", content: "Say hello" }], max_tokens: 20 }),
  });
}
