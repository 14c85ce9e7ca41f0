import type { AuditSink, CallerKey } from "../core/context.js";
import type { RequestLogEntry } from "../core/requestLog.js";

/** A key's settings as the admin API accepts them (validated by the control plane). */
export interface KeyChanges {
  models?: string[] | null;
  admin?: boolean;
  rpm?: number | null;
  tpm?: number | null;
  maxConcurrent?: number | null;
  dailyTokens?: number | null;
  monthlyTokens?: number | null;
  budgetUsd?: number | null;
  localOnly?: boolean;
  storeContent?: boolean;
  contentRetentionDays?: number | null;
  expires?: string | null;
}

/** A request the log records, with the bytes its answer sent. */
export interface CompletedRequest extends RequestLogEntry {
  bytes: number;
}

/**
 * What the HTTP layer needs from the control plane (src/control implements it; main.ts passes it in): who is
 * asking, their rate-limit state, where finished requests are reported, and the admin use cases.
 */
export interface HttpControl {
  requiresKeys(): Promise<boolean>;
  /** The caller's key; undefined on an open server; throws AuthenticationError otherwise. */
  authenticate(secret: string | undefined): Promise<CallerKey | undefined>;
  rateLimitHeaders(key: CallerKey): Promise<Record<string, string>>;
  /** Readiness: resolves when the control plane's store answers at the current schema; rejects saying why not. */
  ready(): Promise<{ engine: string; schemaVersion: number }>;
  /** Which key made a request (the ledger's key id): null = no key, undefined = no record of that request. */
  requestKeyId(requestId: string): Promise<string | null | undefined>;
  completeRequest(entry: CompletedRequest): void;
  readonly audit: AuditSink;
  readonly metrics: { text(): Promise<string>; readonly contentType: string };
  readonly admin: {
    /** Usage lines as JSON objects, and the same as CSV. */
    usage(query: { by?: string; since?: string; key?: string }): Promise<{ data: object[]; csv(): string }>;
    /** Keys as the API shows them (snake_case, never the secret). */
    listKeys(includeRevoked?: boolean): Promise<object[]>;
    createKey(name: string, changes: KeyChanges, actor: string, why?: string): Promise<{ secret: string; key: object }>;
    revokeKey(idOrName: string, actor: string, why?: string): Promise<object>;
    updateKey(idOrName: string, changes: KeyChanges, actor: string): Promise<object>;
    auditTrail(
      limit?: number,
      filter?: { action?: string; actor?: string },
    ): Promise<{ entries: object[]; verification: object }>;
    verifyAudit(): Promise<object>;
    /** One request's ledger row (tokens, latency, cost), undefined when none is recorded. */
    requestRow(requestId: string): Promise<{ keyName: string | null } | undefined>;
  };
}
