import { createHash } from "node:crypto";
import type { AuditEvent, AuditSink } from "../core/context.js";
import { InvalidRequestError } from "../core/errors.js";
import {
  type AuditHead,
  type AuditKey,
  type AuditKeySource,
  auditKey,
  existingAuditKey,
  headMac,
  makeHead,
  readWitness,
  WitnessWriter,
  witnessPath,
} from "./auditKey.js";
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
  /** The newest entry's hash: `freehold audit head` exports it (keyed) to keep elsewhere. */
  head: string;
  /** Whether the chain is keyed (HMAC-SHA-256 with the audit key) from an `audit.keyed` entry on. */
  keyed: boolean;
  /** The first thing found wrong, when not ok (every one is in `problems`). */
  problem?: string;
  problems: string[];
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

interface KeyRow {
  id: string;
  name: string;
  hash: string;
  revoked_at: string | null;
  [column: string]: unknown;
}

const genesis = "0".repeat(64);
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

function detailOf(row: AuditRow): Record<string, unknown> {
  try {
    return row.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** A key's settings as its audit entries record them (the fields of KeyRecord they cover) from its database row. */
const keyStateColumns: Record<string, (row: KeyRow) => unknown> = {
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

interface Pending {
  event: AuditEvent;
  time: string;
}

/**
 * The audit trail: who did what, to what, when and why. Each entry's hash is an HMAC-SHA-256, with a secret kept
 * outside the database (auditKey.ts), of its fields and the previous entry's hash, so someone who can write the
 * database can neither edit, insert nor re-chain entries. Cutting the end is caught by a keyed witness of the newest
 * entry kept beside the key file (and by a head line the owner keeps elsewhere: `freehold audit head`), and deleting
 * a key's entries by cross-checking the keys table. A trail written before keying keeps its plain SHA-256 entries; an
 * `audit.keyed` entry, itself keyed, continues it, so those older entries are fixed from then on too.
 */
export class AuditLog implements AuditSink {
  private readonly readHead;
  private readonly insertEntry;
  private readonly writeHead;
  private readonly hashAt;
  private readonly witness: string;
  private readonly witnessWriter: WitnessWriter;
  private key: AuditKey | undefined;
  /** Whether this database's trail has its `audit.keyed` entry (found once, then remembered). */
  private keyed = false;
  /** Entries queued by recordSoon, with the time they happened; written in order by the next flush. */
  private pending: Pending[] = [];
  private flushScheduled = false;

  constructor(
    private readonly db: ControlDatabase,
    private readonly source: AuditKeySource,
  ) {
    this.readHead = db.prepare<[], { seq: number; hash: string }>("SELECT seq, hash FROM audit_head");
    this.insertEntry = db.prepare(
      "INSERT INTO audit (seq, time, actor, action, target, request_id, detail, prev_hash, hash) VALUES (@seq, @time, @actor, @action, @target, @request_id, @detail, @prev_hash, @hash)",
    );
    this.writeHead = db.prepare(
      "INSERT INTO audit_head (id, seq, hash) VALUES (1, ?, ?) ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
    );
    this.hashAt = db.prepare<[number], { hash: string; time: string }>("SELECT hash, time FROM audit WHERE seq = ?");
    this.witness = witnessPath(source);
    this.witnessWriter = new WitnessWriter(this.witness);
  }

  /**
   * Throws (saying how to fix it) when the configured key exists but cannot be used: a short FREEHOLD_AUDIT_KEY, a key
   * file others can read. The server checks at start rather than failing its first administrative action.
   */
  checkKey(): void {
    this.key ??= existingAuditKey(this.source);
  }

  /** The chain's key, creating its file on first use. */
  private currentKey(): AuditKey {
    this.key ??= auditKey(this.source);
    return this.key;
  }

  /** A keyed digest naming a key's stored secret hash in its entries (a swapped secret is then found). */
  fingerprint(storedHash: string): string {
    return secretFingerprint(this.currentKey(), storedHash);
  }

  /** The witness file (the keyed head of the trail, rewritten after every append). */
  get witnessFile(): string {
    return this.witness;
  }

  /**
   * Appends an entry now, in its own transaction, committed durably (administrative actions: written, and synced to
   * disk, before the caller goes on).
   */
  record(event: AuditEvent): void {
    this.flush();
    this.commit(() => undefined, [{ event, time: new Date().toISOString() }], true);
  }

  /**
   * Runs a change to the database and appends the entry describing it in one durable transaction, so neither exists
   * without the other (a key is never created without its `key.create` entry).
   */
  audited<T>(change: () => { result: T; event: AuditEvent }): T {
    this.flush();
    let event: AuditEvent | undefined;
    return this.commit(
      () => {
        const done = change();
        event = done.event;
        return done.result;
      },
      () => [{ event: event!, time: new Date().toISOString() }],
      true,
    );
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

  /** Writes what is queued and the witness's newest head (the server or a command is closing the database). */
  close(): void {
    if (this.db.open) this.flush();
    this.witnessWriter.settle();
  }

  /** Writes what recordSoon queued. */
  flush(): void {
    this.flushScheduled = false;
    if (this.pending.length === 0 || !this.db.open) return;
    const batch = this.pending;
    this.commit(() => undefined, batch, false);
    this.pending = this.pending === batch ? [] : this.pending.slice(batch.length);
  }

  /**
   * One write: `change`, then the entries, in one IMMEDIATE transaction (the write lock orders the appends of every
   * process on this database), then the witness once it is committed. `durable` syncs the commit to disk: cheap for
   * rare administrative entries; per-request batches use the database's synchronous=NORMAL (docs/control.md).
   */
  private commit<T>(change: () => T, entries: Pending[] | (() => Pending[]), durable: boolean): T {
    // The safety level can only change outside a transaction; inside a caller's, its commit decides.
    const toggle = durable && !this.db.inTransaction;
    if (toggle) this.db.pragma("synchronous = FULL");
    let head: AuditHead | undefined;
    try {
      const result = this.db
        .transaction(() => {
          const value = change();
          head = this.append(typeof entries === "function" ? entries() : entries);
          return value;
        })
        .immediate();
      // Inside a caller's transaction nothing is committed yet: the next append writes the witness instead.
      if (head && !this.db.inTransaction) {
        if (durable) this.witnessWriter.now(head);
        else this.witnessWriter.soon(head);
      }
      return result;
    } finally {
      if (toggle) this.db.pragma("synchronous = NORMAL");
    }
  }

  /** Inserts the entries after the current head (first the `audit.keyed` and `audit.cut` entries when due). */
  private append(entries: Pending[]): AuditHead {
    const key = this.currentKey();
    let head = this.readHead.get() ?? { seq: 0, hash: genesis };
    const now = new Date().toISOString();
    const due: Pending[] = [];
    if (!this.keyed) {
      this.keyed =
        this.db
          .prepare<[string], { seq: number }>("SELECT seq FROM audit WHERE action = ? LIMIT 1")
          .get(keyedAction) !== undefined;
      if (!this.keyed) due.push({ time: now, event: this.keyedEvent(key, head.seq) });
    }
    const cut = this.witnessProblem(key, head);
    if (cut) due.push({ time: now, event: { actor: "freehold", action: cutAction, detail: cut } });
    let last: { seq: number; hash: string; time: string } = { ...head, time: now };
    for (const { event, time } of [...due, ...entries]) {
      const row = {
        seq: head.seq + 1,
        time,
        actor: event.actor,
        action: event.action,
        target: event.target ?? null,
        request_id: event.requestId ?? null,
        detail: event.detail ? JSON.stringify(event.detail) : null,
        prev_hash: head.hash,
      };
      const hash = keyedHash(key, row);
      this.insertEntry.run({ ...row, hash });
      head = { seq: row.seq, hash };
      last = { ...head, time };
    }
    this.keyed = true;
    this.writeHead.run(head.seq, head.hash);
    return makeHead(key, last);
  }

  /** The entry that starts keying a trail, saying how the plain part before it verified (it is fixed from now on). */
  private keyedEvent(key: AuditKey, plainEntries: number): AuditEvent {
    const plain = plainEntries > 0 ? this.checkChain(undefined) : undefined;
    return {
      actor: "freehold",
      action: keyedAction,
      detail: {
        scheme: "hmac-sha256",
        keyId: key.id,
        plainEntries,
        ...(plain ? { plainChain: plain.problems[0] ?? "intact" } : {}),
      },
    };
  }

  /** What is wrong between the trail's end and the witness (undefined: nothing, or no witness on an unkeyed trail). */
  private witnessProblem(
    key: AuditKey,
    end: { seq: number; hash: string },
  ): { problem: string; witness?: Omit<AuditHead, "mac" | "keyId">; trailEnd: number } | undefined {
    let witness: AuditHead | undefined;
    try {
      witness = readWitness(this.witness);
    } catch (error) {
      return { problem: (error as Error).message, trailEnd: end.seq };
    }
    if (!witness)
      return this.keyed && !this.witnessWriter.pending
        ? {
            problem: `the audit witness ${this.witness} is missing (it is rewritten after every entry): it was deleted`,
            trailEnd: end.seq,
          }
        : undefined;
    const problem = this.compareHead(key, witness, end, `the witness (${this.witness})`);
    return problem
      ? { problem, witness: { seq: witness.seq, hash: witness.hash, time: witness.time }, trailEnd: end.seq }
      : undefined;
  }

  /** How the trail disagrees with a head kept outside it (the witness or the owner's line); undefined if it agrees. */
  private compareHead(key: AuditKey, head: AuditHead, end: { seq: number }, what: string): string | undefined {
    if (head.keyId !== key.id)
      return `${what} was made with audit key ${head.keyId}, not the configured key ${key.id}: a different key (FREEHOLD_AUDIT_KEY / FREEHOLD_AUDIT_KEY_FILE) or a forged head`;
    if (headMac(key, head) !== head.mac)
      return `${what} does not carry the audit key's signature: it was forged or edited`;
    if (head.seq > end.seq)
      return `the trail ends at entry ${end.seq} but ${what} records entry ${head.seq} (${head.time}): the newest entries were deleted or the database was replaced by an older copy (or lost in a power loss, docs/control.md)`;
    if (head.seq === 0) return undefined;
    const row = this.hashAt.get(head.seq);
    if (row?.hash !== head.hash)
      return `entry ${head.seq} is not the one ${what} records (${head.time}): the trail was rewritten from there or before, or the database was replaced by another copy`;
    return undefined;
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

  /**
   * Records that the owner exported the head (so the trail is keyed from here on) and returns that entry's keyed
   * head, for `freehold audit head` to print as a line to keep somewhere the database's writers cannot reach.
   */
  exportHead(actor: string): AuditHead {
    this.record({ actor, action: "audit.head" });
    const row = this.db
      .prepare<[], { seq: number; hash: string; time: string }>(
        "SELECT seq, hash, time FROM audit ORDER BY seq DESC LIMIT 1",
      )
      .get()!;
    return makeHead(this.key!, row);
  }

  /** Accepts a recorded cut after the owner looked into it (a power loss, a restored backup), with the reason. */
  acknowledge(seq: number, actor: string, why: string): void {
    const row = this.db.prepare<[number], { action: string }>("SELECT action FROM audit WHERE seq = ?").get(seq);
    if (row?.action !== cutAction)
      throw new InvalidRequestError(
        `entry ${seq} is not an ${cutAction} entry; acknowledge the one \`freehold audit verify\` names`,
        "seq",
      );
    if (!why.trim()) throw new InvalidRequestError("say why the cut is accepted (--why)", "why");
    this.record({ actor, action: acknowledgeAction, target: String(seq), detail: { seq, why } });
  }

  /**
   * Checks everything the trail can be checked against: its chain (keyed from `audit.keyed` on), the head row, the
   * witness, a head the owner kept (`head`), and the keys table (each key's creation, revocation and settings).
   */
  verify(options: { head?: AuditHead } = {}): AuditVerification {
    this.flush();
    let key: AuditKey | undefined;
    const problems: string[] = [];
    try {
      key = this.key ?? existingAuditKey(this.source);
    } catch (error) {
      problems.push((error as Error).message);
    }
    const chain = this.checkChain(key);
    problems.push(...chain.problems);
    const end = { seq: chain.entries, hash: chain.head };
    const head = this.readHead.get();
    if (chain.problems.length === 0 && ((head?.seq ?? 0) !== end.seq || (head?.hash ?? genesis) !== end.hash))
      problems.push(
        `the trail ends at entry ${end.seq} but its head row says ${head?.seq ?? 0}: the newest entries were deleted`,
      );
    if (key) {
      this.keyed = chain.keyed;
      const witness = this.witnessProblem(key, end);
      if (witness) problems.push(witness.problem);
      if (options.head) {
        const owner = this.compareHead(key, options.head, end, "the head you kept");
        if (owner) problems.push(owner);
      }
    } else if (options.head || chain.keyed) {
      problems.push(
        `no audit key (${this.source.secret !== undefined ? "FREEHOLD_AUDIT_KEY" : this.source.file}): the keyed entries and heads cannot be checked`,
      );
    }
    problems.push(...chain.unacknowledgedCuts, ...this.checkKeys(key, chain.keys), ...this.checkLedger());
    return {
      ok: problems.length === 0,
      entries: chain.entries,
      head: chain.head,
      keyed: chain.keyed,
      ...(problems.length ? { problem: problems[0] } : {}),
      problems,
    };
  }

  /** Walks the chain in order; `key` undefined checks only its plain part. Collects what the cross-checks need. */
  private checkChain(key: AuditKey | undefined) {
    let previous = genesis;
    let entries = 0;
    let keyed = false;
    const problems: string[] = [];
    const keys = new Map<
      string,
      { created?: number; revoked?: number; state?: Record<string, unknown>; fingerprint?: string }
    >();
    const cuts = new Map<number, string>();
    for (const row of this.db.prepare<[], AuditRow>("SELECT * FROM audit ORDER BY seq").iterate()) {
      const expected = entries + 1;
      if (row.seq !== expected) {
        problems.push(`entry ${expected} is missing (the next entry is ${row.seq}): entries were deleted`);
        break;
      }
      if (row.prev_hash !== previous) {
        problems.push(
          `entry ${row.seq} does not follow entry ${row.seq - 1}: an entry before it was changed, removed or reordered`,
        );
        break;
      }
      const { hash, ...rest } = row;
      if (!keyed && row.action === keyedAction) keyed = true;
      if (keyed && !key) break;
      if ((keyed ? keyedHash(key!, rest) : plainHash(rest)) !== hash) {
        const anchor = keyed && row.action === keyedAction ? detailOf(row).keyId : undefined;
        problems.push(
          anchor && key && anchor !== key.id
            ? `the trail was keyed with audit key ${String(anchor)} but the configured key is ${key.id}: set FREEHOLD_AUDIT_KEY or FREEHOLD_AUDIT_KEY_FILE to the key it was written with`
            : `entry ${row.seq} (${row.action}) was edited after it was written, or forged without the audit key`,
        );
        break;
      }
      previous = hash;
      entries++;
      const detail = detailOf(row);
      const id = typeof detail.id === "string" ? detail.id : undefined;
      if (id && (row.action === "key.create" || row.action === "key.update" || row.action === "key.revoke")) {
        const seen = keys.get(id) ?? {};
        if (row.action === "key.create") seen.created = row.seq;
        if (row.action === "key.revoke") seen.revoked = row.seq;
        if (row.action !== "key.revoke") {
          // An update written before keys' states were recorded says only what changed: the state is unknown then.
          const state = row.action === "key.create" ? detail : (detail.state as Record<string, unknown> | undefined);
          if (state) seen.state = state;
          else delete seen.state;
          if (typeof detail.fingerprint === "string") seen.fingerprint = detail.fingerprint;
        }
        keys.set(id, seen);
      }
      if (row.action === cutAction) cuts.set(row.seq, String(detail.problem ?? "the trail was cut"));
      if (row.action === acknowledgeAction) cuts.delete(Number(detail.seq));
    }
    const unacknowledgedCuts = [...cuts].map(
      ([seq, problem]) =>
        `entry ${seq} records that the trail was found cut: ${problem}; once explained, \`freehold audit acknowledge ${seq} --why …\``,
    );
    return { entries, head: previous, keyed, problems, keys, unacknowledgedCuts };
  }

  /**
   * A ledger row served by a remote provider (money spent, content sent) must have its routing decision in the trail:
   * a row added directly, or a decision removed, is named. Refusals at admission (429) come before any decision.
   */
  private checkLedger(): string[] {
    const rows = this.db
      .prepare<[], { request_id: string; provider: string; model: string; time_ms: number }>(unexplainedLedgerRows)
      .all();
    return rows
      .slice(0, 5)
      .map(
        (row) =>
          `ledger row ${row.request_id} (${row.provider}/${row.model}, ${new Date(row.time_ms).toISOString()}) has no route.* entry: a remote request's routing decision is always recorded, so the row was added directly or its entry removed`,
      )
      .concat(rows.length > 5 ? ["…and more ledger rows without their route.* entry"] : []);
  }

  /** Every key must have its creation entry, a revoked one its revocation, and match its last recorded state. */
  private checkKeys(
    key: AuditKey | undefined,
    recorded: Map<
      string,
      { created?: number; revoked?: number; state?: Record<string, unknown>; fingerprint?: string }
    >,
  ): string[] {
    const problems: string[] = [];
    for (const row of this.db.prepare<[], KeyRow>("SELECT * FROM keys ORDER BY created_at").iterate()) {
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
}

/** Remote requests reach a provider only through a route, whose decision is recorded (before the ledger row). */
const unexplainedLedgerRows = `
  SELECT request_id, provider, model, time_ms FROM ledger AS l
  WHERE l.provider != 'local' AND l.status != 429
    AND NOT EXISTS (SELECT 1 FROM audit AS a WHERE a.request_id = l.request_id AND a.action LIKE 'route.%')
  ORDER BY l.time_ms LIMIT 6`;

/** Names a key's stored secret hash in the trail without copying it there (a keyed digest of it). */
export function secretFingerprint(key: AuditKey, storedHash: string): string {
  return key.mac(`freehold-key-secret\n${storedHash}`).slice(0, 32);
}
