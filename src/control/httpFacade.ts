import { keyView } from "./admin.js";
import type { ControlPlane } from "./controlPlane.js";
import { usageCsv } from "./usageReport.js";

/** The control plane as the HTTP layer sees it (src/http/control.ts's HttpControl, matched structurally). */
export function httpFacade(control: ControlPlane) {
  return {
    requiresKeys: () => control.requiresKeys(),
    authenticate: (secret: string | undefined) => control.authenticate(secret),
    requestKeyId: async (requestId: string) => {
      const row = await control.store.ledgerRow(requestId);
      return row === undefined ? undefined : row.keyId;
    },
    rateLimitHeaders: (key: { id: string }) => control.rateLimitHeaders(key),
    ready: () => control.ready(),
    completeRequest: (entry: Parameters<ControlPlane["completeRequest"]>[0]) => control.completeRequest(entry),
    audit: control.audit,
    metrics: control.metrics,
    admin: {
      async usage(query: { by?: string; since?: string; key?: string }) {
        const lines = await control.admin.usage(query);
        return { data: lines, csv: () => usageCsv(lines) };
      },
      listKeys: async (includeRevoked?: boolean) => (await control.admin.listKeys(includeRevoked)).map(keyView),
      async createKey(...args: Parameters<ControlPlane["admin"]["createKey"]>) {
        const created = await control.admin.createKey(...args);
        return { secret: created.secret, key: keyView(created.key) };
      },
      revokeKey: async (idOrName: string, actor: string, why?: string) =>
        keyView(await control.admin.revokeKey(idOrName, actor, why)),
      updateKey: async (idOrName: string, changes: Parameters<ControlPlane["admin"]["updateKey"]>[1], actor: string) =>
        keyView(await control.admin.updateKey(idOrName, changes, actor)),
      auditTrail: (limit?: number, filter?: { action?: string; actor?: string }) =>
        control.admin.auditTrail(limit, filter),
      verifyAudit: () => control.audit.verify(),
      requestRow: (requestId: string) => control.store.ledgerRow(requestId),
    },
  };
}
