import { userInfo } from "node:os";
import { AuditLog } from "../control/audit.js";
import { openControlDatabase } from "../control/database.js";
import type { AuditEvent } from "../core/context.js";

function user(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? "unknown");
  }
}

/**
 * Records a change a CLI command made to the store (import, pull, create, copy, delete, adopt) in the audit trail,
 * as the HTTP admin routes do; the actor is `cli:<os user>`. The change has already happened, so a trail that cannot
 * be written is a warning on stderr, not a failure of the command.
 */
export function auditCli(home: string, event: Omit<AuditEvent, "actor">): void {
  try {
    const db = openControlDatabase(home);
    try {
      new AuditLog(db).record({ actor: `cli:${user()}`, ...event });
    } finally {
      db.close();
    }
  } catch (error) {
    process.stderr.write(
      `warning: ${event.action} ${event.target ?? ""} was not recorded in the audit trail: ${error instanceof Error ? error.message : String(error)}\n`,
    );
  }
}
