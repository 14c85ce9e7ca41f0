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
