import type { Command } from "commander";
import type { Config, ConfigOverrides } from "../config/config.js";
import { loadSettings, type Settings } from "../config/fileConfig.js";
import { auditSource, ControlPlane } from "../control/controlPlane.js";

/** The validated Config for a command, from its global flags (`--home`, `--config`), the environment and freehold.yaml. */
export function commandConfig(command: Command, overrides: ConfigOverrides = {}): Config {
  return commandSettings(command, overrides).config;
}

/** Config plus the freehold.yaml it came from (providers, routes, privacy, offline). */
export function commandSettings(command: Command, overrides: ConfigOverrides = {}, offline?: boolean): Settings {
  const globals = command.optsWithGlobals() as { home?: string; config?: string };
  return loadSettings({
    overrides: { ...(globals.home ? { home: globals.home } : {}), ...overrides },
    ...(globals.config ? { configPath: globals.config } : {}),
    ...(offline !== undefined ? { offline } : {}),
  });
}

/** The control plane over this command's home, with the audit key as configured (the server's, so entries chain). */
export function controlFor(command: Command): ControlPlane {
  const config = commandConfig(command);
  return new ControlPlane({ home: config.home, logLevel: "silent", audit: auditSource(config) });
}

/** Writes a line to stdout (the commands' output; errors go through main's handler to stderr). */
export function print(line = ""): void {
  process.stdout.write(`${line}\n`);
}

/** The base URL of the server this config points at (a wildcard listen address is reached on loopback). */
export function serverUrl(config: Config): string {
  const host =
    config.host === "0.0.0.0" || config.host === "::"
      ? "127.0.0.1"
      : config.host.includes(":")
        ? `[${config.host}]`
        : config.host;
  return `http://${host}:${config.port}`;
}
