import { randomUUID } from "node:crypto";
import type { AuditKeySource } from "./auditKey.js";
import { type EvalRows, PostgresEvalRows } from "./evalRows.js";
import { postgresMigrations } from "./migrations.js";
import { PostgresAuditTrail } from "./postgresAudit.js";
import { PostgresDatabase, type Sql } from "./postgresDatabase.js";
import { PostgresKeys } from "./postgresKeys.js";
import { PostgresLedger } from "./postgresLedger.js";
import { PostgresQuotas } from "./postgresQuotas.js";
import { type ControlStore, redactUrl, type StoreStatus } from "./store.js";

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

  readonly hasKeys: ControlStore["hasKeys"] = () => this.keys.any();
  readonly resolveKey: ControlStore["resolveKey"] = (secret, now) => this.keys.resolve(secret, now);
  readonly getKey: ControlStore["getKey"] = (idOrName) => this.keys.get(idOrName);
  readonly listKeys: ControlStore["listKeys"] = (includeRevoked) => this.keys.list(includeRevoked);
  readonly createKey: ControlStore["createKey"] = (name, settings, by) => this.keys.create(name, settings, by);
  readonly updateKey: ControlStore["updateKey"] = (idOrName, settings, by) => this.keys.update(idOrName, settings, by);
  readonly revokeKey: ControlStore["revokeKey"] = (idOrName, by) => this.keys.revoke(idOrName, by);

  readonly reserve: ControlStore["reserve"] = (key, request, now) => this.quotas.reserve(key, request, now);
  readonly settle: ControlStore["settle"] = (settlement) => this.quotas.settle(settlement);
  readonly rateLimitHeaders: ControlStore["rateLimitHeaders"] = (key, now) => this.quotas.rateLimitHeaders(key, now);
  readonly renewLeases: ControlStore["renewLeases"] = (now) => this.quotas.renewLeases(now);
  readonly sweepOrphans: ControlStore["sweepOrphans"] = (now) => this.quotas.sweepOrphans(now);

  readonly completeRequests: ControlStore["completeRequests"] = (entries) => this.ledger.completeRequests(entries);
  readonly usage: ControlStore["usage"] = (query) => this.ledger.usage(query);
  readonly ledgerRows: ControlStore["ledgerRows"] = (options) => this.ledger.rows(options);
  readonly ledgerRow: ControlStore["ledgerRow"] = (requestId) => this.ledger.row(requestId);
  readonly expireContent: ControlStore["expireContent"] = (now) => this.ledger.expireContent(now);

  readonly appendAudit: ControlStore["appendAudit"] = (entries, durable) => this.audit.append(entries, durable);
  readonly auditList: ControlStore["auditList"] = (options) => this.audit.list(options);
  readonly auditDecision: ControlStore["auditDecision"] = (requestId) => this.audit.decision(requestId);
  readonly auditExportHead: ControlStore["auditExportHead"] = (actor) => this.audit.exportHead(actor);
  readonly auditAcknowledge: ControlStore["auditAcknowledge"] = (seq, actor, why) =>
    this.audit.acknowledge(seq, actor, why);
  readonly auditVerify: ControlStore["auditVerify"] = (options) => this.audit.verify(options);

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
