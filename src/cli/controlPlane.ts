import type { Command } from "commander";
import { ControlPlane } from "../control/controlPlane.js";
import { commandConfig } from "./context.js";

/** The control plane a command works on: the configured PostgreSQL database, else the SQLite file in its home. */
export function openCommandControl(command: Command): Promise<ControlPlane> {
  const config = commandConfig(command);
  return ControlPlane.open({
    home: config.home,
    logLevel: "silent",
    ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
  });
}
