import type postgres from "postgres";
import type { AuditEvent } from "../core/context.js";
import * as rules from "./auditChain.js";
import * as checks from "./auditChecks.js";
import type { AuditHead, AuditKey, AuditKeySource } from "./auditKey.js";
import * as keyring from "./auditKey.js";
import type { Db, PostgresDatabase, Tx } from "./postgresDatabase.js";
import { redactUrl } from "./store.js";

/** This replica's audit key is not the one the shared trail is keyed with (or it has none). */
export class AuditKeyMismatchError extends Error {}

/**
 * The audit trail on PostgreSQL: the chain is extended under a lock on its head row, so concurrent writers on every
 * replica make one chain; its rules (keying, chaining, every verify check) are auditChain.ts's, shared with SQLite.
 */
export class PostgresAuditTrail {
  /** This database's witness file beside the audit key (each database has its own; see postgresWitnessScope). */
  readonly witness: string;
  private readonly witnessWriter: keyring.WitnessWriter;
  private key: AuditKey | undefined;
  /** Whether the trail has its `audit.keyed` entry (found once, then remembered). */
  private keyed = false;

  constructor(
    private readonly db: PostgresDatabase,
    private readonly auditSource: AuditKeySource,
  ) {
    this.witness = keyring.witnessPath(auditSource, keyring.postgresWitnessScope(db.url));
    this.witnessWriter = new keyring.WitnessWriter(this.witness);
  }

  /** Reads the configured key, throwing (saying how to fix it) when it exists but cannot be used. */
  readKey(): void {
    this.key = keyring.existingAuditKey(this.auditSource);
  }

  /** Refuses a key that is not the one the trail's `audit.keyed` entry names (or none, on a keyed trail). */
  async checkAnchor(): Promise<void> {
    const [anchor] = await this.db.sql<
      { detail: string | null }[]
    >`SELECT detail FROM audit WHERE action = ${rules.keyedAction}
      ORDER BY seq LIMIT 1`;
    if (!anchor) return;
    this.checkAnchorKey(this.key, anchor.detail);
    this.keyed = true;
  }

  /**
   * Throws when `key` is not the one a keyed trail's anchor names: a replica with another key (one it created on
   * its own, say) would append entries that neither the other replicas nor `audit verify` can check.
   */
  private checkAnchorKey(key: AuditKey | undefined, detail: string | null): void {
    const keyId = String((JSON.parse(detail ?? "{}") as { keyId?: unknown }).keyId);
    const where =
      this.auditSource.secret !== undefined ? "FREEHOLD_AUDIT_KEY" : `the key file ${this.auditSource.file}`;
    if (!key)
      throw new AuditKeyMismatchError(
        `the audit trail in ${redactUrl(this.db.url)} is keyed with audit key ${keyId}, and this replica has none (${where} does not exist): give every replica the same key (FREEHOLD_AUDIT_KEY, or a copy of the key file)`,
      );
    if (key.id !== keyId)
      throw new AuditKeyMismatchError(
        `the audit trail in ${redactUrl(this.db.url)} is keyed with audit key ${keyId}, but this replica's key (${where}) is ${key.id}: give every replica the same key (FREEHOLD_AUDIT_KEY, or a copy of the key file)`,
      );
  }

  /** The chain's key, creating its file on first use. */
  currentKey(): AuditKey {
    this.key ??= keyring.auditKey(this.auditSource);
    return this.key;
  }

  /**
   * Runs a change and appends the entry describing it in one transaction (neither exists without the other), then
   * writes the witness once it is committed.
   */
  async audited<T>(change: (tx: Tx) => Promise<{ result: T; event: AuditEvent }>): Promise<T> {
    const { result, head } = await this.db.run(() =>
      this.db.sql.begin(async (tx) => {
        const done = await change(tx);
        const head = await this.appendIn(tx, [{ event: done.event, time: new Date().toISOString() }]);
        return { result: done.result, head };
      }),
    );
    this.committed(head, true);
    return result as T;
  }

  async append(entries: readonly { event: AuditEvent; time: string }[], durable: boolean): Promise<void> {
    if (entries.length === 0) return;
    const head = await this.db.run(() => this.db.sql.begin((tx) => this.appendIn(tx, entries)));
    this.committed(head, durable);
  }

  /** After a commit: the trail is keyed, and the witness vouches for its new end (now, or soon off the loop). */
  private committed(head: AuditHead, durable: boolean): void {
    this.keyed = true;
    if (durable) this.witnessWriter.now(head);
    else this.witnessWriter.soon(head);
  }

  /**
   * Inserts the entries after the head (first the `audit.keyed` and `audit.cut` entries when due), under a lock on
   * the head row: writers on every replica queue on it, so concurrent appends make one chain.
   */
  private async appendIn(tx: Tx, entries: readonly rules.PendingEntry[]): Promise<AuditHead> {
    const key = this.currentKey();
    const [locked] = await tx<
      { seq: number; hash: string }[]
    >`SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`;
    const head = locked ?? { seq: 0, hash: rules.genesis };
    const now = new Date().toISOString();
    const due: rules.PendingEntry[] = [];
    if (!this.keyed) {
      // Another replica may have keyed the trail since this one started: with this key, or refused here.
      const [anchor] = await tx<
        { detail: string | null }[]
      >`SELECT detail FROM audit WHERE action = ${rules.keyedAction}
        ORDER BY seq LIMIT 1`;
      if (anchor) this.checkAnchorKey(key, anchor.detail);
      else
        due.push({
          time: now,
          event: rules.keyedEvent(key, head.seq, head.seq > 0 ? await this.checkChain(tx, undefined) : undefined),
        });
    }
    // Each replica keeps its own witness beside its key: one that has written none yet (a new replica, or this start
    // before its first entry) has nothing to miss; a witness that is there must agree with the trail.
    const cut = await checks.witnessProblem(
      key,
      this.witness,
      head,
      { keyed: this.witnessWriter.wrote, pending: this.witnessWriter.pending },
      (seq) => this.hashAt(tx, seq),
    );
    if (cut) due.push({ time: now, event: checks.cutEvent(cut) });
    const rows = rules.chainRows(head, [...due, ...entries], key);
    const last = rows.at(-1)!;
    await tx`INSERT INTO audit ${tx(rows as unknown as Record<string, postgres.SerializableParameter>[])}`;
    await tx`UPDATE audit_head SET seq = ${last.seq}, hash = ${last.hash} WHERE id = 1`;
    return keyring.makeHead(key, last);
  }

  private async hashAt(db: Db, seq: number): Promise<string | undefined> {
    const [row] = await db<{ hash: string }[]>`SELECT hash FROM audit WHERE seq = ${seq}`;
    return row?.hash;
  }

  /** Walks the chain in order, a page at a time; `key` undefined checks only its plain part. */
  private async checkChain(db: Db, key: AuditKey | undefined) {
    const checker = new rules.ChainChecker(key);
    let going = true;
    for await (const rows of db<rules.AuditRow[]>`SELECT * FROM audit ORDER BY seq`.cursor(1000)) {
      for (const row of rows) if (going) going = checker.add(row);
      if (!going) break;
    }
    return checker.result();
  }

  async list(options: {
    limit?: number;
    sinceMs?: number;
    action?: string;
    actor?: string;
  }): Promise<rules.AuditEntry[]> {
    // LIKE with an escape character, so a "_" or "%" in the filter matches itself and not any character.
    const prefix = `${(options.action ?? "").replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    const rows = await this.db.run(
      () => this.db.sql<
        rules.AuditRow[]
      >`SELECT * FROM audit WHERE time >= ${new Date(options.sinceMs ?? 0).toISOString()}
        AND action LIKE ${prefix} ESCAPE '\\' AND (${options.actor ?? null}::text IS NULL OR actor = ${options.actor ?? null})
        ORDER BY seq DESC LIMIT ${options.limit ?? 100}`,
    );
    return rows.reverse().map(rules.toEntry);
  }

  async decision(requestId: string): Promise<Record<string, unknown> | undefined> {
    const [row] = await this.db.run(
      () => this.db.sql<{ detail: string | null }[]>`SELECT detail FROM audit WHERE request_id = ${requestId}
        AND action LIKE 'route.%' ORDER BY seq DESC LIMIT 1`,
    );
    return row?.detail ? (JSON.parse(row.detail) as Record<string, unknown>) : undefined;
  }

  /** Records `audit.head` and returns that entry's keyed head (this append's own, whatever other replicas write). */
  async exportHead(actor: string): Promise<AuditHead> {
    const head = await this.db.run(() =>
      this.db.sql.begin((tx) =>
        this.appendIn(tx, [{ event: { actor, action: "audit.head" }, time: new Date().toISOString() }]),
      ),
    );
    this.committed(head, true);
    return head;
  }

  async acknowledge(seq: number, actor: string, why: string): Promise<void> {
    const [row] = await this.db.run(
      () => this.db.sql<{ action: string }[]>`SELECT action FROM audit WHERE seq = ${seq}`,
    );
    await this.append(
      [{ event: rules.acknowledgeEvent(seq, row?.action, actor, why), time: new Date().toISOString() }],
      true,
    );
  }

  /**
   * The same checks as the SQLite trail's (auditChain.ts): the keyed chain, the head row, this replica's witness, a
   * head the owner kept, the keys table and the ledger, all read in one snapshot, so entries appended meanwhile by
   * other replicas do not look like a broken chain.
   */
  async verify(options: { head?: AuditHead } = {}): Promise<rules.AuditVerification> {
    const problems: string[] = [];
    let key: AuditKey | undefined;
    try {
      key = this.key ?? keyring.existingAuditKey(this.auditSource);
    } catch (error) {
      problems.push((error as Error).message);
    }
    return this.db.run(() =>
      this.db.sql.begin("ISOLATION LEVEL REPEATABLE READ READ ONLY", async (tx) => {
        const chain = await this.checkChain(tx, key);
        problems.push(...chain.problems);
        const end = { seq: chain.entries, hash: chain.head };
        const [headRow] = await tx<{ seq: number; hash: string }[]>`SELECT seq, hash FROM audit_head WHERE id = 1`;
        const headProblem = checks.headRowProblem(chain, headRow);
        if (headProblem) problems.push(headProblem);
        if (key) {
          const witness = await checks.witnessProblem(
            key,
            this.witness,
            end,
            { keyed: chain.keyed, pending: this.witnessWriter.pending },
            (seq) => this.hashAt(tx, seq),
          );
          if (witness) problems.push(witness.problem);
          if (options.head) {
            const hashAt = await this.hashAt(tx, options.head.seq);
            const owner = checks.compareHead(key, options.head, end, "the head you kept", hashAt);
            if (owner) problems.push(owner);
          }
        } else if (options.head || chain.keyed) {
          problems.push(checks.missingKeyProblem(this.auditSource));
        }
        const ledger = (await tx.unsafe(checks.unexplainedLedgerRows)) as unknown as checks.UnexplainedLedgerRow[];
        const keys = await tx<checks.KeyTableRow[]>`SELECT * FROM keys ORDER BY created_at`;
        problems.push(
          ...chain.unacknowledgedCuts,
          ...checks.keyProblems(key, chain.keys, keys),
          ...checks.ledgerProblems(ledger),
        );
        return checks.verdict(chain, problems);
      }),
    );
  }

  /** The witness's newest head (a per-request batch may have left it to be written soon), after a write in flight. */
  async close(): Promise<void> {
    await this.witnessWriter.idle();
    this.witnessWriter.settle();
  }
}
