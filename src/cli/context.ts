import type { Command } from "commander";
import { type Config, type ConfigOverrides, loadConfig } from "../config/config.js";

/** The validated Config for a command, from its global flags (`--home`) and the environment. */
export function commandConfig(command: Command, overrides: ConfigOverrides = {}): Config {
  const globals = command.optsWithGlobals() as { home?: string };
  return loadConfig({ ...(globals.home ? { home: globals.home } : {}), ...overrides });
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
