import { userInfo } from "node:os";
import type { Config } from "../config/config.js";
import type { AuditEvent } from "../core/context.js";
import { openConfigControl } from "./controlPlane.js";

function user(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? "unknown");
  }
}

/**
 * Records a change a CLI command made to the store (import, pull, create, copy, delete, adopt) in the audit trail
 * of the configured control plane (PostgreSQL with FREEHOLD_DATABASE_URL or database.url, else the home's SQLite
 * file), as the HTTP admin routes do; the actor is `cli:<os user>`. The change has already happened, so a trail that
 * cannot be written is a warning on stderr, not a failure of the command.
 */
export async function auditCli(config: Config, event: Omit<AuditEvent, "actor">): Promise<void> {
  try {
    const control = await openConfigControl(config);
    try {
      await control.audit.record({ actor: `cli:${user()}`, ...event });
    } finally {
      await control.close();
    }
  } catch (error) {
    process.stderr.write(
      `warning: ${event.action} ${event.target ?? ""} was not recorded in the audit trail: ${error instanceof Error ? error.message : String(error)}\n`,
    );
  }
}
