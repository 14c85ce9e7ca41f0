import type { AuditEvent, AuditSink } from "../core/context.js";
import {
  type AuditEntry,
  type AuditRow,
  type AuditVerification,
  acknowledgeEvent,
  ChainChecker,
  chainRows,
  genesis,
  keyedAction,
  keyedEvent,
  type PendingEntry,
  toEntry,
} from "./auditChain.js";
import {
  compareHead,
  cutEvent,
  headRowProblem,
  type KeyTableRow,
  keyProblems,
  ledgerProblems,
  missingKeyProblem,
  secretFingerprint,
  type UnexplainedLedgerRow,
  unexplainedLedgerRows,
  verdict,
  type WitnessProblem,
  witnessProblemSync,
} from "./auditChecks.js";
import {
  type AuditHead,
  type AuditKey,
  type AuditKeySource,
  auditKey,
  existingAuditKey,
  makeHead,
  WitnessWriter,
  witnessPath,
} from "./auditKey.js";
import type { ControlDatabase } from "./database.js";

export {
  type AuditEntry,
  type AuditRow,
  type AuditVerification,
  acknowledgeAction,
  cutAction,
  keyedAction,
  toEntry,
} from "./auditChain.js";
export { secretFingerprint } from "./auditChecks.js";

type Pending = PendingEntry;

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

  /** Waits for a witness write in progress off the event loop (before close, so nothing writes after it). */
  async settled(): Promise<void> {
    if (this.db.open) this.flush();
    await this.witnessWriter.idle();
  }

  /** Writes what is queued and the witness's newest head (the server or a command is closing the database). */
  close(): void {
    if (this.db.open) this.flush();
    this.witnessWriter.settle();
  }

  /**
   * Appends entries written elsewhere (the store port's AuditTrail queues them): `durable` for administrative actions,
   * not for per-request batches, as record and recordSoon do.
   */
  appendEntries(entries: readonly { event: AuditEvent; time: string }[], durable: boolean): void {
    this.flush();
    if (entries.length === 0 || !this.db.open) return;
    this.commit(() => undefined, [...entries], durable);
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
    const head = this.readHead.get() ?? { seq: 0, hash: genesis };
    const now = new Date().toISOString();
    const due: Pending[] = [];
    if (!this.keyed) {
      this.keyed =
        this.db
          .prepare<[string], { seq: number }>("SELECT seq FROM audit WHERE action = ? LIMIT 1")
          .get(keyedAction) !== undefined;
      if (!this.keyed)
        due.push({
          time: now,
          event: keyedEvent(key, head.seq, head.seq > 0 ? this.checkChain(undefined) : undefined),
        });
    }
    const cut = this.witnessProblem(key, head);
    if (cut) due.push({ time: now, event: cutEvent(cut) });
    const rows = chainRows(head, [...due, ...entries], key);
    for (const row of rows) this.insertEntry.run(row);
    const last = rows.at(-1);
    this.keyed = true;
    if (!last) return makeHead(key, { ...head, time: now });
    this.writeHead.run(last.seq, last.hash);
    return makeHead(key, last);
  }

  /** What is wrong between the trail's end and the witness (undefined: nothing, or no witness on an unkeyed trail). */
  private witnessProblem(key: AuditKey, end: { seq: number }): WitnessProblem | undefined {
    return witnessProblemSync(
      key,
      this.witness,
      end,
      { keyed: this.keyed, pending: this.witnessWriter.pending },
      (seq) => this.hashAt.get(seq)?.hash,
    );
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
    this.record(acknowledgeEvent(seq, row?.action, actor, why));
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
    const headRow = headRowProblem(chain, this.readHead.get());
    if (headRow) problems.push(headRow);
    if (key) {
      this.keyed = chain.keyed;
      const witness = this.witnessProblem(key, end);
      if (witness) problems.push(witness.problem);
      if (options.head) {
        const owner = compareHead(key, options.head, end, "the head you kept", this.hashAt.get(options.head.seq)?.hash);
        if (owner) problems.push(owner);
      }
    } else if (options.head || chain.keyed) {
      problems.push(missingKeyProblem(this.source));
    }
    const ledgerRows = this.db.prepare<[], UnexplainedLedgerRow>(unexplainedLedgerRows).all();
    const keyRows = this.db.prepare<[], KeyTableRow>("SELECT * FROM keys ORDER BY created_at").all();
    problems.push(...chain.unacknowledgedCuts, ...keyProblems(key, chain.keys, keyRows), ...ledgerProblems(ledgerRows));
    return verdict(chain, problems);
  }

  /** Walks the chain in order; `key` undefined checks only its plain part. */
  private checkChain(key: AuditKey | undefined) {
    const checker = new ChainChecker(key);
    for (const row of this.db.prepare<[], AuditRow>("SELECT * FROM audit ORDER BY seq").iterate())
      if (!checker.add(row)) break;
    return checker.result();
  }
}
