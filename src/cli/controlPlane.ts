import type { Command } from "commander";
import type { Config } from "../config/config.js";
import { auditSource, ControlPlane } from "../control/controlPlane.js";
import { commandConfig } from "./context.js";

/** The control plane a configuration names: its PostgreSQL database (database.url), else the SQLite file in its home. */
export function openConfigControl(config: Config): Promise<ControlPlane> {
  return ControlPlane.open({
    home: config.home,
    logLevel: "silent",
    // The server's audit key, so the command's entries continue the same keyed chain.
    audit: auditSource(config),
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
  });
}

/** The control plane a command works on: the configured PostgreSQL database, else the SQLite file in its home. */
export function openCommandControl(command: Command): Promise<ControlPlane> {
  return openConfigControl(commandConfig(command));
}
