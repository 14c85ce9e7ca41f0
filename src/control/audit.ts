import { createHash } from "node:crypto";
import type { AuditEvent, AuditSink } from "../core/context.js";
import type { ControlDatabase } from "./database.js";

export interface AuditEntry extends AuditEvent {
  seq: number;
  time: string;
  prevHash: string;
  hash: string;
}

export interface AuditVerification {
  ok: boolean;
  entries: number;
  /** The newest entry's hash: write it down elsewhere to detect a rewritten history later. */
  head: string;
  /** What is wrong, naming the entry, when not ok. */
  problem?: string;
}

interface AuditRow {
  seq: number;
  time: string;
  actor: string;
  action: string;
  target: string | null;
  request_id: string | null;
  detail: string | null;
  prev_hash: string;
  hash: string;
}

const genesis = "0".repeat(64);

function entryHash(row: Omit<AuditRow, "hash">): string {
  const fields = [row.seq, row.time, row.actor, row.action, row.target, row.request_id, row.detail, row.prev_hash];
  return createHash("sha256").update(JSON.stringify(fields)).digest("hex");
}

function toEntry(row: AuditRow): AuditEntry {
  return {
    seq: row.seq,
    time: row.time,
    actor: row.actor,
    action: row.action,
    ...(row.target !== null ? { target: row.target } : {}),
    ...(row.request_id !== null ? { requestId: row.request_id } : {}),
    ...(row.detail !== null ? { detail: JSON.parse(row.detail) as Record<string, unknown> } : {}),
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/**
 * The audit trail: who did what, to what, when and why. Tamper-evident: each entry's hash covers its fields and the
 * previous entry's hash, and a head row holds the newest, so `verify` finds an edited, inserted or deleted entry.
 */
export class AuditLog implements AuditSink {
  constructor(private readonly db: ControlDatabase) {}

  record(event: AuditEvent): void {
    this.db
      .transaction(() => {
        const head = this.db.prepare<[], { seq: number; hash: string }>("SELECT seq, hash FROM audit_head").get();
        const row = {
          seq: (head?.seq ?? 0) + 1,
          time: new Date().toISOString(),
          actor: event.actor,
          action: event.action,
          target: event.target ?? null,
          request_id: event.requestId ?? null,
          detail: event.detail ? JSON.stringify(event.detail) : null,
          prev_hash: head?.hash ?? genesis,
        };
        const hash = entryHash(row);
        this.db
          .prepare(
            "INSERT INTO audit (seq, time, actor, action, target, request_id, detail, prev_hash, hash) VALUES (@seq, @time, @actor, @action, @target, @request_id, @detail, @prev_hash, @hash)",
          )
          .run({ ...row, hash });
        this.db
          .prepare(
            "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
          )
          .run(row.seq, hash);
      })
      .immediate();
  }

  list(options: { limit?: number; sinceMs?: number } = {}): AuditEntry[] {
    const rows = this.db
      .prepare<[string, number], AuditRow>("SELECT * FROM audit WHERE time >= ? ORDER BY seq DESC LIMIT ?")
      .all(new Date(options.sinceMs ?? 0).toISOString(), options.limit ?? 100);
    return rows.reverse().map(toEntry);
  }

  /** The last routing decision recorded for a request (what `freehold explain` shows once memory has moved on). */
  decision(requestId: string): Record<string, unknown> | undefined {
    const row = this.db
      .prepare<[string], { detail: string | null }>(
        "SELECT detail FROM audit WHERE request_id = ? AND action LIKE 'route.%' ORDER BY seq DESC LIMIT 1",
      )
      .get(requestId);
    return row?.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : undefined;
  }

  verify(): AuditVerification {
    let previous = genesis;
    let expectedSeq = 1;
    let entries = 0;
    const fail = (problem: string): AuditVerification => ({ ok: false, entries, head: previous, problem });
    for (const row of this.db.prepare<[], AuditRow>("SELECT * FROM audit ORDER BY seq").iterate()) {
      if (row.seq !== expectedSeq)
        return fail(`entry ${expectedSeq} is missing (the next entry is ${row.seq}): entries were deleted`);
      if (row.prev_hash !== previous)
        return fail(`entry ${row.seq} does not follow entry ${row.seq - 1}: an entry before it was changed or removed`);
      const { hash, ...rest } = row;
      if (entryHash(rest) !== hash) return fail(`entry ${row.seq} (${row.action}) was edited after it was written`);
      previous = hash;
      expectedSeq++;
      entries++;
    }
    const head = this.db.prepare<[], { seq: number; hash: string }>("SELECT seq, hash FROM audit_head").get();
    if ((head?.seq ?? 0) !== entries || (head?.hash ?? genesis) !== previous)
      return fail(
        `the trail ends at entry ${entries} but its head says ${head?.seq ?? 0}: the newest entries were deleted`,
      );
    return { ok: true, entries, head: previous };
  }
}
