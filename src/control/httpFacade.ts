import { keyView } from "./admin.js";
import type { ControlPlane } from "./controlPlane.js";
import { usageCsv } from "./usageReport.js";

/** The control plane as the HTTP layer sees it (src/http/control.ts's HttpControl, matched structurally). */
export function httpFacade(control: ControlPlane) {
  return {
    requiresKeys: () => control.requiresKeys(),
    authenticate: (secret: string | undefined) => control.authenticate(secret),
    requestKeyId: (requestId: string) => control.ledger.keyIdOf(requestId),
    rateLimitHeaders: (key: { id: string }) => control.rateLimitHeaders(key),
    completeRequest: (entry: Parameters<ControlPlane["completeRequest"]>[0]) => control.completeRequest(entry),
    audit: control.audit,
    metrics: control.metrics,
    admin: {
      usage(query: { by?: string; since?: string; key?: string }) {
        const lines = control.admin.usage(query);
        return { data: lines, csv: () => usageCsv(lines) };
      },
      listKeys: (includeRevoked?: boolean) => control.admin.listKeys(includeRevoked).map(keyView),
      createKey(...args: Parameters<ControlPlane["admin"]["createKey"]>) {
        const created = control.admin.createKey(...args);
        return { secret: created.secret, key: keyView(created.key) };
      },
      revokeKey: (idOrName: string, actor: string, why?: string) =>
        keyView(control.admin.revokeKey(idOrName, actor, why)),
      updateKey: (idOrName: string, changes: Parameters<ControlPlane["admin"]["updateKey"]>[1], actor: string) =>
        keyView(control.admin.updateKey(idOrName, changes, actor)),
      auditTrail: (limit?: number, filter?: { action?: string; actor?: string }) =>
        control.admin.auditTrail(limit, filter),
      verifyAudit: () => control.audit.verify(),
      requestRow: (requestId: string) => control.ledger.row(requestId),
    },
  };
}
