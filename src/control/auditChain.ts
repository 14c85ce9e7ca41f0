import { createHash } from "node:crypto";
import type { AuditEvent } from "../core/context.js";
import { InvalidRequestError } from "../core/errors.js";
import { type AuditHead, type AuditKey, type AuditKeySource, headMac, readWitness } from "./auditKey.js";

/**
 * The audit chain's rules, shared by both stores (SQLite in audit.ts, PostgreSQL in postgresStore.ts): how entries
 * are keyed and chained, what starts keying a trail, and every check `verify` makes. The stores only read and write
 * rows; what the rows must satisfy is decided here once.
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

/** A keys table row as the cross-check reads it (the same columns in both stores). */
export interface KeyTableRow {
  id: string;
  name: string;
  hash: string;
  revoked_at: string | null;
  [column: string]: unknown;
}

/** A remote ledger row without its routing decision (the query is the same in both stores: unexplainedLedgerRows). */
export interface UnexplainedLedgerRow {
  request_id: string;
  provider: string;
  model: string;
  time_ms: number;
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

interface RecordedKey {
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

/** A key's settings as its audit entries record them (the fields of KeyRecord they cover) from its database row. */
const keyStateColumns: Record<string, (row: KeyTableRow) => unknown> = {
  name: (row) => row.name,
  admin: (row) => row.admin === 1,
  models: (row) => (row.models === null ? null : JSON.parse(String(row.models))),
  localOnly: (row) => row.local_only === 1,
  storeContent: (row) => row.store_content === 1,
  rpm: (row) => row.rpm,
  tpm: (row) => row.tpm,
  maxConcurrent: (row) => row.max_concurrent,
  dailyTokens: (row) => row.daily_tokens,
  monthlyTokens: (row) => row.monthly_tokens,
  budgetUsd: (row) => row.budget_usd,
  contentRetentionDays: (row) => row.content_retention_days,
  expiresAt: (row) => row.expires_at,
};

/** Names a key's stored secret hash in the trail without copying it there (a keyed digest of it). */
export function secretFingerprint(key: AuditKey, storedHash: string): string {
  return key.mac(`freehold-key-secret\n${storedHash}`).slice(0, 32);
}

/** Every key must have its creation entry, a revoked one its revocation, and match its last recorded state. */
export function keyProblems(
  key: AuditKey | undefined,
  recorded: Map<string, RecordedKey>,
  rows: Iterable<KeyTableRow>,
): string[] {
  const problems: string[] = [];
  for (const row of rows) {
    const seen = recorded.get(row.id);
    if (seen?.created === undefined) {
      problems.push(
        `key ${row.name} (${row.id}) has no key.create entry: it was added to the database directly, or its entry was removed`,
      );
      continue;
    }
    if (row.revoked_at !== null && seen.revoked === undefined)
      problems.push(`key ${row.name} (${row.id}) is revoked but has no key.revoke entry: its entry was removed`);
    if (row.revoked_at === null && seen.revoked !== undefined)
      problems.push(`key ${row.name} (${row.id}) was revoked (entry ${seen.revoked}) but is active in the database`);
    if (key && seen.fingerprint && secretFingerprint(key, row.hash) !== seen.fingerprint)
      problems.push(`key ${row.name} (${row.id}) has a different secret than the one it was created with`);
    if (!seen.state) continue;
    for (const [field, read] of Object.entries(keyStateColumns)) {
      if (!(field in seen.state)) continue;
      const now = JSON.stringify(read(row) ?? null);
      const then = JSON.stringify(seen.state[field] ?? null);
      if (now !== then)
        problems.push(
          `key ${row.name} (${row.id}): ${field} is ${now} in the database but ${then} in the trail: it was changed outside freehold`,
        );
    }
  }
  return problems;
}

/** Remote requests reach a provider only through a route, whose decision is recorded (before the ledger row). */
export const unexplainedLedgerRows = `
  SELECT request_id, provider, model, time_ms FROM ledger AS l
  WHERE l.provider != 'local' AND l.status != 429
    AND NOT EXISTS (SELECT 1 FROM audit AS a WHERE a.request_id = l.request_id AND a.action LIKE 'route.%')
  ORDER BY l.time_ms LIMIT 6`;

/**
 * A ledger row served by a remote provider (money spent, content sent) must have its routing decision in the trail:
 * a row added directly, or a decision removed, is named. Refusals at admission (429) come before any decision.
 */
export function ledgerProblems(rows: readonly UnexplainedLedgerRow[]): string[] {
  return rows
    .slice(0, 5)
    .map(
      (row) =>
        `ledger row ${row.request_id} (${row.provider}/${row.model}, ${new Date(row.time_ms).toISOString()}) has no route.* entry: a remote request's routing decision is always recorded, so the row was added directly or its entry removed`,
    )
    .concat(rows.length > 5 ? ["…and more ledger rows without their route.* entry"] : []);
}

/**
 * How the trail disagrees with a head kept outside it (the witness or the owner's line); undefined if it agrees.
 * `hashAt` is the hash the trail holds at `head.seq` (undefined: no such entry), read by the store.
 */
export function compareHead(
  key: AuditKey,
  head: AuditHead,
  end: { seq: number },
  what: string,
  hashAt: string | undefined,
): string | undefined {
  if (head.keyId !== key.id)
    return `${what} was made with audit key ${head.keyId}, not the configured key ${key.id}: a different key (FREEHOLD_AUDIT_KEY / FREEHOLD_AUDIT_KEY_FILE) or a forged head`;
  if (headMac(key, head) !== head.mac)
    return `${what} does not carry the audit key's signature: it was forged or edited`;
  if (head.seq > end.seq)
    return `the trail ends at entry ${end.seq} but ${what} records entry ${head.seq} (${head.time}): the newest entries were deleted or the database was replaced by an older copy (or lost in a power loss, docs/control.md)`;
  if (head.seq === 0) return undefined;
  if (hashAt !== head.hash)
    return `entry ${head.seq} is not the one ${what} records (${head.time}): the trail was rewritten from there or before, or the database was replaced by another copy`;
  return undefined;
}

export interface WitnessProblem {
  problem: string;
  witness?: Omit<AuditHead, "mac" | "keyId">;
  trailEnd: number;
}

/**
 * What is wrong between the trail's end and the witness file (undefined: nothing, or no witness on an unkeyed trail).
 * `hashAt` reads the trail's hash at an entry (the store's query); `pending`: a witness of ours is still being written.
 */
export async function witnessProblem(
  key: AuditKey,
  file: string,
  end: { seq: number },
  state: { keyed: boolean; pending: boolean },
  hashAt: (seq: number) => string | undefined | Promise<string | undefined>,
): Promise<WitnessProblem | undefined> {
  const witness = readWitnessOrProblem(file, end, state);
  if (!witness || "problem" in witness) return witness;
  const problem = compareHead(key, witness, end, `the witness (${file})`, await hashAt(witness.seq));
  return problem
    ? { problem, witness: { seq: witness.seq, hash: witness.hash, time: witness.time }, trailEnd: end.seq }
    : undefined;
}

/** witnessProblem for a store that reads synchronously (SQLite: inside its write transaction). */
export function witnessProblemSync(
  key: AuditKey,
  file: string,
  end: { seq: number },
  state: { keyed: boolean; pending: boolean },
  hashAt: (seq: number) => string | undefined,
): WitnessProblem | undefined {
  const witness = readWitnessOrProblem(file, end, state);
  if (!witness || "problem" in witness) return witness;
  const problem = compareHead(key, witness, end, `the witness (${file})`, hashAt(witness.seq));
  return problem
    ? { problem, witness: { seq: witness.seq, hash: witness.hash, time: witness.time }, trailEnd: end.seq }
    : undefined;
}

function readWitnessOrProblem(
  file: string,
  end: { seq: number },
  state: { keyed: boolean; pending: boolean },
): AuditHead | WitnessProblem | undefined {
  let witness: AuditHead | undefined;
  try {
    witness = readWitness(file);
  } catch (error) {
    return { problem: (error as Error).message, trailEnd: end.seq };
  }
  if (!witness)
    return state.keyed && !state.pending
      ? {
          problem: `the audit witness ${file} is missing (it is rewritten after every entry): it was deleted`,
          trailEnd: end.seq,
        }
      : undefined;
  return witness;
}

/** The `audit.cut` entry an append writes first when the witness disagrees with the trail. */
export function cutEvent(problem: WitnessProblem): AuditEvent {
  return { actor: "freehold", action: cutAction, detail: { ...problem } };
}

/** What verify reports about the key itself, when it cannot check the keyed part. */
export function missingKeyProblem(source: AuditKeySource): string {
  return `no audit key (${source.secret !== undefined ? "FREEHOLD_AUDIT_KEY" : source.file}): the keyed entries and heads cannot be checked`;
}

/** The head row must agree with the chain's end (else the newest entries were deleted and the row left alone). */
export function headRowProblem(
  chain: AuditChainResult,
  headRow: { seq: number; hash: string } | undefined,
): string | undefined {
  if (chain.problems.length > 0) return undefined;
  if ((headRow?.seq ?? 0) === chain.entries && (headRow?.hash ?? genesis) === chain.head) return undefined;
  return `the trail ends at entry ${chain.entries} but its head row says ${headRow?.seq ?? 0}: the newest entries were deleted`;
}

/** The verdict from every check's findings, in the order verify reports them. */
export function verdict(chain: AuditChainResult, problems: string[]): AuditVerification {
  return {
    ok: problems.length === 0,
    entries: chain.entries,
    head: chain.head,
    keyed: chain.keyed,
    ...(problems.length ? { problem: problems[0] } : {}),
    problems,
  };
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
