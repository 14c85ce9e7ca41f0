import { createHash } from "node:crypto";
import type { AuditEvent } from "../core/context.js";
import { InvalidRequestError } from "../core/errors.js";
import type { AuditKey } from "./auditKey.js";

/**
 * The audit chain's rules, shared by both stores (SQLite in audit.ts, PostgreSQL in postgresStore.ts): how entries
 * are keyed and chained, what starts keying a trail, and how the chain is walked; what `verify` checks it against is
 * auditChecks.ts. The stores only read and write rows; what the rows must satisfy is decided here once.
 */

export interface AuditEntry extends AuditEvent {
  seq: number;
  time: string;
  prevHash: string;
  hash: string;
}

export interface AuditVerification {
  ok: boolean;
  entries: number;
  /** The newest entry's hash: `freehold audit head` exports it (keyed) to keep elsewhere. */
  head: string;
  /** Whether the chain is keyed (HMAC-SHA-256 with the audit key) from an `audit.keyed` entry on. */
  keyed: boolean;
  /** The first thing found wrong, when not ok (every one is in `problems`). */
  problem?: string;
  problems: string[];
}

export interface AuditRow {
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

export interface PendingEntry {
  event: AuditEvent;
  time: string;
}

export const genesis = "0".repeat(64);
/** The entry that switches the chain from plain SHA-256 (trails written before keying) to HMAC-SHA-256. */
export const keyedAction = "audit.keyed";
/** Written when an append finds the trail shorter than (or different from) its witness: it was cut or rolled back. */
export const cutAction = "audit.cut";
export const acknowledgeAction = "audit.acknowledge";

function fieldsOf(row: Omit<AuditRow, "hash">): string {
  return JSON.stringify([
    row.seq,
    row.time,
    row.actor,
    row.action,
    row.target,
    row.request_id,
    row.detail,
    row.prev_hash,
  ]);
}

function plainHash(row: Omit<AuditRow, "hash">): string {
  return createHash("sha256").update(fieldsOf(row)).digest("hex");
}

function keyedHash(key: AuditKey, row: Omit<AuditRow, "hash">): string {
  return key.mac(fieldsOf(row));
}

export function toEntry(row: AuditRow): AuditEntry {
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

/** The rows a batch of entries becomes after `head`: each numbered, and keyed-chained to the one before. */
export function chainRows(
  head: { seq: number; hash: string },
  entries: readonly PendingEntry[],
  key: AuditKey,
): AuditRow[] {
  const rows: AuditRow[] = [];
  let previous = head;
  for (const { event, time } of entries) {
    const row = {
      seq: previous.seq + 1,
      time,
      actor: event.actor,
      action: event.action,
      target: event.target ?? null,
      request_id: event.requestId ?? null,
      detail: event.detail ? JSON.stringify(event.detail) : null,
      prev_hash: previous.hash,
    };
    const hash = keyedHash(key, row);
    rows.push({ ...row, hash });
    previous = { seq: row.seq, hash };
  }
  return rows;
}

/** The entry that starts keying a trail, saying how the plain part before it verified (it is fixed from now on). */
export function keyedEvent(key: AuditKey, plainEntries: number, plainChain: AuditChainResult | undefined): AuditEvent {
  return {
    actor: "freehold",
    action: keyedAction,
    detail: {
      scheme: "hmac-sha256",
      keyId: key.id,
      plainEntries,
      ...(plainChain ? { plainChain: plainChain.problems[0] ?? "intact" } : {}),
    },
  };
}

function detailOf(row: AuditRow): Record<string, unknown> {
  try {
    return row.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

export interface RecordedKey {
  created?: number;
  revoked?: number;
  state?: Record<string, unknown>;
  fingerprint?: string;
}

export interface AuditChainResult {
  entries: number;
  head: string;
  keyed: boolean;
  problems: string[];
  keys: Map<string, RecordedKey>;
  unacknowledgedCuts: string[];
}

/**
 * Walks a trail read in seq order; `key` undefined checks only its plain part. Collects what the cross-checks need
 * (each key's recorded creation, revocation, state and secret fingerprint; cuts not yet acknowledged).
 */
export class ChainChecker {
  private previous = genesis;
  private entries = 0;
  private keyed = false;
  private stopped = false;
  private readonly problems: string[] = [];
  private readonly keys = new Map<string, RecordedKey>();
  private readonly cuts = new Map<number, string>();

  constructor(private readonly key: AuditKey | undefined) {}

  /** Feeds the next row; false once there is no point reading on (a break in the chain, or keyed rows and no key). */
  add(row: AuditRow): boolean {
    if (this.stopped) return false;
    const expected = this.entries + 1;
    if (row.seq !== expected) {
      this.problems.push(`entry ${expected} is missing (the next entry is ${row.seq}): entries were deleted`);
      return this.stop();
    }
    if (row.prev_hash !== this.previous) {
      this.problems.push(
        `entry ${row.seq} does not follow entry ${row.seq - 1}: an entry before it was changed, removed or reordered`,
      );
      return this.stop();
    }
    const { hash, ...rest } = row;
    if (!this.keyed && row.action === keyedAction) this.keyed = true;
    if (this.keyed && !this.key) return this.stop();
    if ((this.keyed ? keyedHash(this.key!, rest) : plainHash(rest)) !== hash) {
      const anchor = this.keyed && row.action === keyedAction ? detailOf(row).keyId : undefined;
      this.problems.push(
        anchor && this.key && anchor !== this.key.id
          ? `the trail was keyed with audit key ${String(anchor)} but the configured key is ${this.key.id}: set FREEHOLD_AUDIT_KEY or FREEHOLD_AUDIT_KEY_FILE to the key it was written with`
          : `entry ${row.seq} (${row.action}) was edited after it was written, or forged without the audit key`,
      );
      return this.stop();
    }
    this.previous = hash;
    this.entries++;
    const detail = detailOf(row);
    const id = typeof detail.id === "string" ? detail.id : undefined;
    if (id && (row.action === "key.create" || row.action === "key.update" || row.action === "key.revoke")) {
      const seen = this.keys.get(id) ?? {};
      if (row.action === "key.create") seen.created = row.seq;
      if (row.action === "key.revoke") seen.revoked = row.seq;
      if (row.action !== "key.revoke") {
        // An update written before keys' states were recorded says only what changed: the state is unknown then.
        const state = row.action === "key.create" ? detail : (detail.state as Record<string, unknown> | undefined);
        if (state) seen.state = state;
        else delete seen.state;
        if (typeof detail.fingerprint === "string") seen.fingerprint = detail.fingerprint;
      }
      this.keys.set(id, seen);
    }
    if (row.action === cutAction) this.cuts.set(row.seq, String(detail.problem ?? "the trail was cut"));
    if (row.action === acknowledgeAction) this.cuts.delete(Number(detail.seq));
    return true;
  }

  private stop(): false {
    this.stopped = true;
    return false;
  }

  result(): AuditChainResult {
    const unacknowledgedCuts = [...this.cuts].map(
      ([seq, problem]) =>
        `entry ${seq} records that the trail was found cut: ${problem}; once explained, \`freehold audit acknowledge ${seq} --why …\``,
    );
    return {
      entries: this.entries,
      head: this.previous,
      keyed: this.keyed,
      problems: [...this.problems],
      keys: this.keys,
      unacknowledgedCuts,
    };
  }
}

/** The `audit.acknowledge` entry accepting the cut recorded at `seq` (whose action the store read), with the reason. */
export function acknowledgeEvent(seq: number, action: string | undefined, actor: string, why: string): AuditEvent {
  if (action !== cutAction)
    throw new InvalidRequestError(
      `entry ${seq} is not an ${cutAction} entry; acknowledge the one \`freehold audit verify\` names`,
      "seq",
    );
  if (!why.trim()) throw new InvalidRequestError("say why the cut is accepted (--why)", "why");
  return { actor, action: acknowledgeAction, target: String(seq), detail: { seq, why } };
}
