import type { AuditEvent } from "../core/context.js";
import type { AuditEntry, AuditVerification } from "./audit.js";
import type { AuditHead } from "./auditKey.js";
import type { EvalRows } from "./evalRows.js";
import type { KeyChangeBy, KeyRecord, KeySettings } from "./keys.js";
import type { LedgerRow, UsageLine, UsageQuery } from "./ledger.js";
import type { QuotaKey, Reservation, ReserveRequest } from "./quotas.js";

/** What one request's end writes, all in one transaction: the reservation settled, the ledger row, its content. */
export interface Settlement {
  key: QuotaKey | undefined;
  reservation: Reservation | undefined;
  row: LedgerRow;
  /** Opted-in content (keys with store_content). */
  content?: { keyId: string; expiresMs: number | null; request: unknown; response: string };
  now: number;
}

export interface StoreStatus {
  engine: "sqlite" | "postgres";
  /** Where it is, without any password. */
  location: string;
  schemaVersion: number;
  latestVersion: number;
}

/**
 * The control plane's store: keys, reservations and quota state, the ledger, the audit chain, stored content. One
 * port with a SQLite implementation (one box, zero setup) and a PostgreSQL one (replicas sharing one database), so
 * nothing above it knows which. Every method that decides (reserve) or records (settle, appendAudit) is one
 * transaction that is exact when several processes or machines share the store.
 */
export interface ControlStore {
  readonly engine: "sqlite" | "postgres";

  hasKeys(): Promise<boolean>;
  /** The active key for a presented secret, or an AuthenticationError that never repeats the secret. */
  resolveKey(secret: string, now: number): Promise<KeyRecord>;
  /** The key with this id or active name, or a NotFoundError. */
  getKey(idOrName: string): Promise<KeyRecord>;
  listKeys(includeRevoked: boolean): Promise<KeyRecord[]>;
  /** Key changes are written with their audit entry (`by` says who and why) in one transaction. */
  createKey(name: string, settings: KeySettings, by: KeyChangeBy): Promise<{ secret: string; key: KeyRecord }>;
  updateKey(idOrName: string, settings: KeySettings, by: KeyChangeBy): Promise<KeyRecord>;
  revokeKey(idOrName: string, by: KeyChangeBy): Promise<KeyRecord>;

  /** Reserves the request's worst case or throws RateLimitError; check and reserve are one transaction. */
  reserve(key: QuotaKey, request: ReserveRequest, now: number): Promise<Reservation>;
  settle(settlement: Settlement): Promise<void>;
  /** The x-ratelimit-* headers for a key now. */
  rateLimitHeaders(key: QuotaKey, now: number): Promise<Record<string, string>>;
  /** The HTTP layer's part of ledger rows (status, bytes sent). */
  completeRequests(entries: readonly { requestId: string; status: number; bytes: number }[]): Promise<void>;
  usage(query: UsageQuery): Promise<UsageLine[]>;
  ledgerRows(options?: { sinceMs?: number; limit?: number }): Promise<LedgerRow[]>;
  /** One request's ledger row, undefined when none is recorded. */
  ledgerRow(requestId: string): Promise<LedgerRow | undefined>;
  /** Extends the lease of this start's reservations (every LEASE_RENEW_MS while the process lives). */
  renewLeases(now: number): Promise<number>;
  /** Drops reservations whose holder is gone; returns how many. */
  sweepOrphans(now: number): Promise<number>;
  expireContent(now: number): Promise<number>;

  /**
   * Appends entries to the one keyed chain, in order, in one transaction (concurrent writers stay one chain);
   * `durable` (administrative actions) syncs the commit.
   */
  appendAudit(entries: readonly { event: AuditEvent; time: string }[], durable: boolean): Promise<void>;
  /** Newest `limit` entries, oldest first; `action` is a prefix, `actor` exact. */
  auditList(options: { limit?: number; sinceMs?: number; action?: string; actor?: string }): Promise<AuditEntry[]>;
  auditDecision(requestId: string): Promise<Record<string, unknown> | undefined>;
  /** Everything the trail is checked against: its keyed chain, witness, keys table, ledger, a head the owner kept. */
  auditVerify(options?: { head?: AuditHead }): Promise<AuditVerification>;
  /** Records `audit.head` and returns its keyed head (`freehold audit head`). */
  auditExportHead(actor: string): Promise<AuditHead>;
  /** Accepts an `audit.cut` entry with the reason (`freehold audit acknowledge`). */
  auditAcknowledge(seq: number, actor: string, why: string): Promise<void>;

  /** Evaluation runs (`freehold eval`, the console's evaluations page), on the same database as the rest. */
  readonly evals: EvalRows;

  /** Reachable and at the schema this freehold writes (readiness); throws saying what is wrong. */
  status(): Promise<StoreStatus>;
  close(): Promise<void>;
}

/** Whether a database URL names PostgreSQL (anything else is refused by the caller with a clear message). */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** A database URL with its password replaced, for logs, status and errors. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable database URL)";
  }
}
