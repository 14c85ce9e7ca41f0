import { randomUUID } from "node:crypto";
import type { AuditEvent } from "../core/context.js";
import type { AuditHead, AuditKeySource } from "./auditKey.js";
import { type EvalRows, PostgresEvalRows } from "./evalRows.js";
import type { KeyChangeBy, KeySettings } from "./keys.js";
import type { UsageQuery } from "./ledger.js";
import { postgresMigrations } from "./migrations.js";
import { PostgresAuditTrail } from "./postgresAudit.js";
import { PostgresDatabase, type Sql } from "./postgresDatabase.js";
import { PostgresKeys } from "./postgresKeys.js";
import { PostgresLedger } from "./postgresLedger.js";
import { PostgresQuotas } from "./postgresQuotas.js";
import type { QuotaKey, ReserveRequest } from "./quotas.js";
import { type ControlStore, redactUrl, type Settlement, type StoreStatus } from "./store.js";

export { AuditKeyMismatchError } from "./postgresAudit.js";

/**
 * The control plane on PostgreSQL, for several gateway replicas sharing one database: one connection pool
 * (postgresDatabase.ts) shared by its aggregates — keys, quotas, ledger, audit trail, evaluations — each in its own
 * file, as SqliteStore composes the SQLite ones.
 */
export class PostgresStore implements ControlStore {
  readonly engine = "postgres" as const;
  /** This start's id: its reservations carry it and a lease it renews (quotas.ts LEASE_MS). */
  readonly instance = `run_${randomUUID().replaceAll("-", "")}`;
  readonly evals: EvalRows;
  private readonly db: PostgresDatabase;
  private readonly audit: PostgresAuditTrail;
  private readonly keys: PostgresKeys;
  private readonly quotas: PostgresQuotas;
  private readonly ledger: PostgresLedger;

  private constructor(url: string, auditSource: AuditKeySource, options: { max?: number } = {}) {
    this.db = new PostgresDatabase(url, options);
    this.audit = new PostgresAuditTrail(this.db, auditSource);
    this.keys = new PostgresKeys(this.db, this.audit);
    this.quotas = new PostgresQuotas(this.db, this.instance);
    this.ledger = new PostgresLedger(this.db);
    this.evals = new PostgresEvalRows(this.db.sql, (work) => this.db.run(work));
  }

  /**
   * Connects and migrates (one replica at a time, under an advisory lock). `audit` is the audit chain's key, the same
   * for every replica: one that is unusable, or not the key the trail was keyed with, refuses the start (a replica
   * with another key would write entries no other replica can verify).
   */
  static async open(url: string, options: { max?: number; audit: AuditKeySource }): Promise<PostgresStore> {
    const store = new PostgresStore(url, options.audit, options);
    try {
      store.audit.readKey();
      await store.db.migrate();
      await store.audit.checkAnchor();
    } catch (error) {
      await store.db.sql.end({ timeout: 1 });
      throw store.db.wrap(error);
    }
    return store;
  }

  async hasKeys() {
    return this.keys.any();
  }
  async resolveKey(secret: string, now: number) {
    return this.keys.resolve(secret, now);
  }
  async getKey(idOrName: string) {
    return this.keys.get(idOrName);
  }
  async listKeys(includeRevoked: boolean) {
    return this.keys.list(includeRevoked);
  }
  async createKey(name: string, settings: KeySettings, by: KeyChangeBy) {
    return this.keys.create(name, settings, by);
  }
  async updateKey(idOrName: string, settings: KeySettings, by: KeyChangeBy) {
    return this.keys.update(idOrName, settings, by);
  }
  async revokeKey(idOrName: string, by: KeyChangeBy) {
    return this.keys.revoke(idOrName, by);
  }

  async reserve(key: QuotaKey, request: ReserveRequest, now: number) {
    return this.quotas.reserve(key, request, now);
  }
  async settle(settlement: Settlement) {
    return this.quotas.settle(settlement);
  }
  async rateLimitHeaders(key: QuotaKey, now: number) {
    return this.quotas.rateLimitHeaders(key, now);
  }
  async renewLeases(now: number) {
    return this.quotas.renewLeases(now);
  }
  async sweepOrphans(now: number) {
    return this.quotas.sweepOrphans(now);
  }

  async completeRequests(entries: readonly { requestId: string; status: number; bytes: number }[]) {
    return this.ledger.completeRequests(entries);
  }
  async usage(query: UsageQuery) {
    return this.ledger.usage(query);
  }
  async ledgerRows(options: { sinceMs?: number; limit?: number } = {}) {
    return this.ledger.rows(options);
  }
  async ledgerRow(requestId: string) {
    return this.ledger.row(requestId);
  }
  async expireContent(now: number) {
    return this.ledger.expireContent(now);
  }

  async appendAudit(entries: readonly { event: AuditEvent; time: string }[], durable: boolean) {
    return this.audit.append(entries, durable);
  }
  async auditList(options: { limit?: number; sinceMs?: number; action?: string; actor?: string }) {
    return this.audit.list(options);
  }
  async auditDecision(requestId: string) {
    return this.audit.decision(requestId);
  }
  async auditExportHead(actor: string) {
    return this.audit.exportHead(actor);
  }
  async auditAcknowledge(seq: number, actor: string, why: string) {
    return this.audit.acknowledge(seq, actor, why);
  }
  async auditVerify(options: { head?: AuditHead } = {}) {
    return this.audit.verify(options);
  }

  async status(): Promise<StoreStatus> {
    return {
      engine: "postgres",
      location: redactUrl(this.db.url),
      schemaVersion: await this.db.schemaVersion(),
      latestVersion: postgresMigrations.length,
    };
  }

  /** The raw connection pool, for `freehold db migrate --to` (bulk copy) and tests. */
  get connection(): Sql {
    return this.db.sql;
  }

  /** This database's witness file beside the audit key (each database has its own; see postgresWitnessScope). */
  get auditWitnessFile(): string {
    return this.audit.witness;
  }

  async close(): Promise<void> {
    await this.audit.close();
    await this.db.sql.end({ timeout: 5 });
  }
}
