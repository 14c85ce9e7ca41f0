import type { AuditEntry, AuditVerification } from "./audit.js";
import type { ControlPlane } from "./controlPlane.js";
import { parseExpiry, parseSince } from "./durations.js";
import type { KeyRecord, KeySettings } from "./keys.js";
import { parseUsageGroups, type UsageLine } from "./ledger.js";

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

/** The administrative use cases, shared by the CLI and the /admin API; each change is audited. */
export class ControlAdmin {
  constructor(private readonly plane: ControlPlane) {}

  usage(query: { by?: string; since?: string; key?: string }): UsageLine[] {
    return this.plane.ledger.usage({
      by: parseUsageGroups(query.by),
      ...(query.since ? { sinceMs: parseSince(query.since) } : {}),
      ...(query.key ? { key: query.key } : {}),
    });
  }

  listKeys(includeRevoked = false): KeyRecord[] {
    return this.plane.keys.list({ includeRevoked });
  }

  createKey(name: string, request: KeyRequest, actor: string, why?: string): { secret: string; key: KeyRecord } {
    return this.plane.keys.create(name, settings(request), { actor, ...(why ? { why } : {}) });
  }

  updateKey(idOrName: string, request: KeyRequest, actor: string): KeyRecord {
    return this.plane.keys.update(idOrName, settings(request), { actor });
  }

  revokeKey(idOrName: string, actor: string, why?: string): KeyRecord {
    return this.plane.keys.revoke(idOrName, { actor, ...(why ? { why } : {}) });
  }

  auditTrail(
    limit = 100,
    filter: { action?: string; actor?: string } = {},
  ): { entries: AuditEntry[]; verification: AuditVerification } {
    return { entries: this.plane.audit.list({ limit, ...filter }), verification: this.plane.audit.verify() };
  }
}
