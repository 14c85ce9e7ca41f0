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
  private readonly readHead;
  private readonly insertEntry;
  private readonly writeHead;
  /** Entries queued by recordSoon, with the time they happened; written in order by the next flush. */
  private pending: { event: AuditEvent; time: string }[] = [];
  private flushScheduled = false;

  constructor(private readonly db: ControlDatabase) {
    this.readHead = db.prepare<[], { seq: number; hash: string }>("SELECT seq, hash FROM audit_head");
    this.insertEntry = db.prepare(
      "INSERT INTO audit (seq, time, actor, action, target, request_id, detail, prev_hash, hash) VALUES (@seq, @time, @actor, @action, @target, @request_id, @detail, @prev_hash, @hash)",
    );
    this.writeHead = db.prepare(
      "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    );
  }

  /** Appends an entry now, in its own transaction (administrative actions: written before the caller goes on). */
  record(event: AuditEvent): void {
    this.flush();
    this.append([{ event, time: new Date().toISOString() }]);
  }

  /**
   * Appends an entry at the end of this turn of the event loop, with every other entry queued in it, in one
   * transaction: per-request routing decisions, so writing them is off the answer's path and costs one commit per
   * burst rather than per request. Reads (list, verify, decision) and close() flush first.
   */
  recordSoon(event: AuditEvent): void {
    this.pending.push({ event, time: new Date().toISOString() });
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      try {
        this.flush();
      } catch {
        // Like a failed record(): the request is not failed for it; the entries stay queued for the next flush.
      }
    });
  }

  /** Writes what recordSoon queued. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || !this.db.open) return;
    const batch = this.pending;
    this.append(batch);
    this.pending = this.pending === batch ? [] : this.pending.slice(batch.length);
  }

  private append(entries: { event: AuditEvent; time: string }[]): void {
    this.db
      .transaction(() => {
        let head = this.readHead.get();
        for (const { event, time } of entries) {
          const row = {
            seq: (head?.seq ?? 0) + 1,
            time,
            actor: event.actor,
            action: event.action,
            target: event.target ?? null,
            request_id: event.requestId ?? null,
            detail: event.detail ? JSON.stringify(event.detail) : null,
            prev_hash: head?.hash ?? genesis,
          };
          const hash = entryHash(row);
          this.insertEntry.run({ ...row, hash });
          head = { seq: row.seq, hash };
        }
        if (head) this.writeHead.run(head.seq, head.hash);
      })
      .immediate();
  }

  /** The newest entries, oldest first; `action` matches a prefix ("key." for every key change), `actor` exactly. */
  list(options: { limit?: number; sinceMs?: number; action?: string; actor?: string } = {}): AuditEntry[] {
    this.flush();
    // LIKE with an escape character, so a "_" or "%" in the filter matches itself and not any character.
    const prefix = `${(options.action ?? "").replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = this.db
      .prepare<[string, string, string | null, string | null, number], AuditRow>(
        `SELECT * FROM audit WHERE time >= ? AND action LIKE ? ESCAPE '\\' AND (? IS NULL OR actor = ?)
         ORDER BY seq DESC LIMIT ?`,
      )
      .all(
        new Date(options.sinceMs ?? 0).toISOString(),
        prefix,
        options.actor ?? null,
        options.actor ?? null,
        options.limit ?? 100,
      );
    return rows.reverse().map(toEntry);
  }

  /** The last routing decision recorded for a request (what `freehold explain` shows once memory has moved on). */
  decision(requestId: string): Record<string, unknown> | undefined {
    this.flush();
    const row = this.db
      .prepare<[string], { detail: string | null }>(
        "SELECT detail FROM audit WHERE request_id = ? AND action LIKE 'route.%' ORDER BY seq DESC LIMIT 1",
      )
      .get(requestId);
    return row?.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : undefined;
  }

  verify(): AuditVerification {
    this.flush();
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
