import type { AuditEvent } from "../core/context.js";
import { AuditLog } from "./audit.js";
import { type AuditHead, type AuditKeySource, defaultAuditKeyFile } from "./auditKey.js";
import { type ControlDatabase, controlDatabasePath, openControlDatabase } from "./database.js";
import { type EvalRows, SqliteEvalRows } from "./evalRows.js";
import { type KeyChangeBy, type KeySettings, KeyStore } from "./keys.js";
import { Ledger, type UsageQuery } from "./ledger.js";
import { migrations } from "./migrations.js";
import { type QuotaKey, Quotas, type Reservation, type ReserveRequest } from "./quotas.js";
import type { ControlStore, Settlement, StoreStatus } from "./store.js";

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * The embedded store: `$FREEHOLD_HOME/freehold.db` through better-sqlite3. Its work is synchronous, so each method
 * is done by the time it returns (the promise only carries the answer); immediate transactions make it exact across
 * processes that share the file.
 */
export class SqliteStore implements ControlStore {
  readonly engine = "sqlite" as const;
  readonly db: ControlDatabase;
  readonly keys: KeyStore;
  readonly quotas: Quotas;
  readonly ledger: Ledger;
  readonly audit: AuditLog;
  readonly evals: EvalRows;

  /**
   * Throws (saying how to fix it, never repeating a secret) when the configured audit key exists but cannot be used:
   * the server refuses to start rather than fail its first administrative action.
   */
  constructor(
    readonly home: string,
    readonly auditSource: AuditKeySource = { file: defaultAuditKeyFile(home) },
  ) {
    this.db = openControlDatabase(home);
    this.audit = new AuditLog(this.db, auditSource);
    try {
      this.audit.checkKey();
    } catch (error) {
      this.db.close();
      throw error;
    }
    this.keys = new KeyStore(this.db, this.audit);
    this.quotas = new Quotas(this.db);
    this.ledger = new Ledger(this.db);
    this.evals = new SqliteEvalRows(this.db);
  }

  async hasKeys() {
    return this.keys.hasKeys();
  }
  async resolveKey(secret: string, now: number) {
    return this.keys.resolve(secret, now);
  }
  async getKey(idOrName: string) {
    return this.keys.get(idOrName);
  }
  async listKeys(includeRevoked: boolean) {
    return this.keys.list({ includeRevoked });
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

  async reserve(key: QuotaKey, request: ReserveRequest, now: number): Promise<Reservation> {
    return this.db.transaction(() => this.quotas.reserve(key, request, now)).immediate();
  }

  async settle({ key, reservation, row, content, now }: Settlement): Promise<void> {
    this.db
      .transaction(() => {
        if (key && reservation)
          this.quotas.settle(key, reservation, row.promptTokens + row.completionTokens, row.costUsd, now);
        this.ledger.insert(row);
        if (content)
          this.ledger.storeContent(
            row.requestId,
            content.keyId,
            now,
            content.expiresMs,
            content.request,
            content.response,
          );
      })
      .immediate();
  }

  async rateLimitHeaders(key: QuotaKey, now: number) {
    return this.quotas.headers(key, now);
  }

  async completeRequests(entries: readonly { requestId: string; status: number; bytes: number }[]) {
    if (!this.db.open) return;
    this.db
      .transaction(() => {
        for (const entry of entries) this.ledger.complete(entry.requestId, entry.status, entry.bytes);
      })
      .immediate();
  }

  async usage(query: UsageQuery) {
    return this.ledger.usage(query);
  }
  async ledgerRows(options: { sinceMs?: number; limit?: number } = {}) {
    return this.ledger.rows(options);
  }
  async renewLeases(now: number) {
    if (!this.db.open) return 0;
    return this.db.transaction(() => this.quotas.renewLeases(now)).immediate();
  }
  async sweepOrphans() {
    return this.quotas.sweepOrphans(processAlive);
  }
  async expireContent(now: number) {
    return this.ledger.expireContent(now);
  }

  async appendAudit(entries: readonly { event: AuditEvent; time: string }[], durable: boolean) {
    if (entries.length > 0 && this.db.open) this.audit.appendEntries(entries, durable);
  }
  async ledgerRow(requestId: string) {
    return this.ledger.row(requestId);
  }
  async auditList(options: { limit?: number; sinceMs?: number; action?: string; actor?: string }) {
    return this.audit.list(options);
  }
  async auditDecision(requestId: string) {
    return this.audit.decision(requestId);
  }
  async auditVerify(options: { head?: AuditHead } = {}) {
    return this.audit.verify(options);
  }
  async auditExportHead(actor: string) {
    return this.audit.exportHead(actor);
  }
  async auditAcknowledge(seq: number, actor: string, why: string) {
    this.audit.acknowledge(seq, actor, why);
  }
  get auditWitnessFile(): string {
    return this.audit.witnessFile;
  }

  async status(): Promise<StoreStatus> {
    const version = this.db.pragma("user_version", { simple: true }) as number;
    return {
      engine: "sqlite",
      location: controlDatabasePath(this.home),
      schemaVersion: version,
      latestVersion: migrations.length,
    };
  }

  async close() {
    // Writes the witness's newest head (a per-request batch may have left it to be written soon), after any write
    // still in flight off the event loop, so nothing touches the home once close has returned.
    await this.audit.settled();
    this.audit.close();
    if (this.db.open) this.db.close();
  }
}
