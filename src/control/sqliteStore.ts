import type { AuditEvent } from "../core/context.js";
import { AuditLog } from "./audit.js";
import { type ControlDatabase, controlDatabasePath, openControlDatabase } from "./database.js";
import { type KeySettings, KeyStore } from "./keys.js";
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

  constructor(readonly home: string) {
    this.db = openControlDatabase(home);
    this.keys = new KeyStore(this.db);
    this.quotas = new Quotas(this.db);
    this.ledger = new Ledger(this.db);
    this.audit = new AuditLog(this.db);
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
  async createKey(name: string, settings: KeySettings) {
    return this.keys.create(name, settings);
  }
  async updateKey(idOrName: string, settings: KeySettings) {
    return this.keys.update(idOrName, settings);
  }
  async revokeKey(idOrName: string) {
    return this.keys.revoke(idOrName);
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

  async appendAudit(entries: readonly { event: AuditEvent; time: string }[]) {
    if (entries.length > 0 && this.db.open) this.audit.append(entries);
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
  async auditVerify() {
    return this.audit.verify();
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
    if (this.db.open) this.db.close();
  }
}
