import { copyFileSync, existsSync } from "node:fs";
import type postgres from "postgres";
import { InvalidRequestError } from "../core/errors.js";
import type { AuditVerification } from "./audit.js";
import { PostgresStore } from "./postgresStore.js";
import type { SqliteStore } from "./sqliteStore.js";

/**
 * The tables `freehold db migrate --to` copies, parents before children. Reservations are not copied: they belong
 * to requests running on the old server, which must be stopped first (their totals are already in usage_totals).
 * Buckets are copied so per-minute limits do not reset on the move.
 */
export const copiedTables = [
  "keys",
  "buckets",
  "usage_totals",
  "ledger",
  "audit",
  "content",
  "eval_runs",
  "eval_results",
  "eval_references",
] as const;

export interface CopyReport {
  rows: Record<string, number>;
  source: AuditVerification;
  target: AuditVerification;
}

const batchRows = 500;

/**
 * Copies a SQLite control plane into an empty PostgreSQL one in one transaction: either everything arrives or
 * nothing does. The audit chain is verified on both sides and must end at the same head hash.
 */
export async function copySqliteToPostgres(source: SqliteStore, url: string): Promise<CopyReport> {
  const before = await source.auditVerify();
  if (!before.ok)
    throw new InvalidRequestError(
      `the SQLite audit trail does not verify (${before.problem}); it is not copied. Investigate with \`freehold audit verify\``,
      "audit",
    );
  const running = source.db.prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM reservations").get()!.n;
  if (running > 0)
    throw new InvalidRequestError(
      `${running} request(s) hold reservations in the SQLite database: stop \`freehold serve\` on it before moving`,
      "reservations",
    );
  // The same audit key: the copied chain is keyed with it (the database's own witness is copied from SQLite's below).
  const target = await PostgresStore.open(url, { audit: source.auditSource });
  try {
    const sql = target.connection;
    const rows: Record<string, number> = {};
    await sql.begin(async (tx) => {
      for (const table of copiedTables) {
        const [existing] = await tx.unsafe(`SELECT COUNT(*)::int AS n FROM ${table}`);
        if ((existing as unknown as { n: number }).n > 0)
          throw new InvalidRequestError(
            `the PostgreSQL database already holds ${table}; \`db migrate --to\` copies only into an empty control plane`,
            "to",
          );
      }
      for (const table of copiedTables) {
        rows[table] = 0;
        let batch: Record<string, unknown>[] = [];
        const flush = async () => {
          if (batch.length === 0) return;
          await tx`INSERT INTO ${tx(table)} ${tx(batch as Record<string, postgres.SerializableParameter>[])}`;
          rows[table]! += batch.length;
          batch = [];
        };
        for (const row of source.db.prepare(`SELECT * FROM ${table}`).iterate()) {
          batch.push(row as Record<string, unknown>);
          if (batch.length >= batchRows) await flush();
        }
        await flush();
      }
      const head = source.db.prepare<[], { seq: number; hash: string }>("SELECT seq, hash FROM audit_head").get();
      if (head) await tx`UPDATE audit_head SET seq = ${head.seq}, hash = ${head.hash} WHERE id = 1`;
      // The ledger's order continues after the copied rows.
      await tx`SELECT setval(pg_get_serial_sequence('ledger', 'id'), GREATEST((SELECT MAX(id) FROM ledger), 1))`;
    });
    // The database's own witness starts where the copied chain ends: the SQLite trail's witness vouched for it.
    const witness = source.auditWitnessFile;
    if (existsSync(witness)) copyFileSync(witness, target.auditWitnessFile);
    const after = await target.auditVerify();
    if (!after.ok || after.head !== before.head || after.entries !== before.entries)
      throw new Error(
        `the copied audit trail does not match the original (${after.problem ?? `head ${after.head} vs ${before.head}`}); the PostgreSQL database holds the copy for inspection`,
      );
    return { rows, source: before, target: after };
  } finally {
    await target.close();
  }
}
