import type { AuditEntry, AuditVerification } from "./audit.js";
import type { AuditTrail } from "./auditTrail.js";
import { parseExpiry, parseSince } from "./durations.js";
import type { KeyRecord, KeySettings } from "./keys.js";
import { parseUsageGroups, type UsageLine } from "./ledger.js";
import type { ControlStore } from "./store.js";

/** A key as the admin API and `freehold keys list --format json` show it (never the secret or its hash). */
export function keyView(key: KeyRecord): Record<string, unknown> {
  return {
    id: key.id,
    name: key.name,
    admin: key.admin,
    models: key.models,
    rpm: key.rpm,
    tpm: key.tpm,
    max_concurrent: key.maxConcurrent,
    daily_tokens: key.dailyTokens,
    monthly_tokens: key.monthlyTokens,
    budget_usd: key.budgetUsd,
    local_only: key.localOnly,
    store_content: key.storeContent,
    content_retention_days: key.contentRetentionDays,
    created_at: key.createdAt,
    expires_at: key.expiresAt,
    revoked_at: key.revokedAt,
  };
}

/** What creating or changing a key asks for; `expires` is a duration from now ("30d") or a date. */
export interface KeyRequest extends Omit<KeySettings, "expiresAt"> {
  expires?: string | null;
}

function settings(request: KeyRequest): KeySettings {
  const { expires, ...rest } = request;
  return { ...rest, ...(expires !== undefined ? { expiresAt: expires === null ? null : parseExpiry(expires) } : {}) };
}

/** What the admin use cases need of the control plane (which passes itself; naming it here would be a cycle). */
export interface AdminPlane {
  readonly store: ControlStore;
  readonly audit: Pick<AuditTrail, "flush" | "list" | "verify">;
}

/** The administrative use cases, shared by the CLI and the /admin API; each change is audited. */
export class ControlAdmin {
  constructor(private readonly plane: AdminPlane) {}

  usage(query: { by?: string; since?: string; key?: string }): Promise<UsageLine[]> {
    return this.plane.store.usage({
      by: parseUsageGroups(query.by),
      ...(query.since ? { sinceMs: parseSince(query.since) } : {}),
      ...(query.key ? { key: query.key } : {}),
    });
  }

  listKeys(includeRevoked = false): Promise<KeyRecord[]> {
    return this.plane.store.listKeys(includeRevoked);
  }

  /** Key changes write their entry in the store's transaction: entries queued before them go first, in order. */
  async createKey(
    name: string,
    request: KeyRequest,
    actor: string,
    why?: string,
  ): Promise<{ secret: string; key: KeyRecord }> {
    await this.plane.audit.flush();
    return this.plane.store.createKey(name, settings(request), { actor, ...(why ? { why } : {}) });
  }

  async updateKey(idOrName: string, request: KeyRequest, actor: string): Promise<KeyRecord> {
    await this.plane.audit.flush();
    return this.plane.store.updateKey(idOrName, settings(request), { actor });
  }

  async revokeKey(idOrName: string, actor: string, why?: string): Promise<KeyRecord> {
    await this.plane.audit.flush();
    return this.plane.store.revokeKey(idOrName, { actor, ...(why ? { why } : {}) });
  }

  async auditTrail(
    limit = 100,
    filter: { action?: string; actor?: string } = {},
  ): Promise<{ entries: AuditEntry[]; verification: AuditVerification }> {
    return {
      entries: await this.plane.audit.list({ limit, ...filter }),
      verification: await this.plane.audit.verify(),
    };
  }
}
