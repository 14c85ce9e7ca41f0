import { userInfo } from "node:os";
import type { Config } from "../config/config.js";
import { AuditLog } from "../control/audit.js";
import { auditSource } from "../control/controlPlane.js";
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
export function auditCli(config: Config, event: Omit<AuditEvent, "actor">): void {
  try {
    const db = openControlDatabase(config.home);
    try {
      new AuditLog(db, auditSource(config)).record({ actor: `cli:${user()}`, ...event });
    } finally {
      db.close();
    }
  } catch (error) {
    process.stderr.write(
      `warning: ${event.action} ${event.target ?? ""} was not recorded in the audit trail: ${error instanceof Error ? error.message : String(error)}\n`,
    );
  }
}
