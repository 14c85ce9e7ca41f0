import type { Command } from "commander";
import type { Config, ConfigOverrides } from "../config/config.js";
import { loadSettings, type Settings } from "../config/fileConfig.js";

/** The validated Config for a command, from its global flags (`--home`, `--config`), the environment and freehold.yaml. */
export function commandConfig(command: Command, overrides: ConfigOverrides = {}): Config {
  return commandSettings(command, overrides).config;
}

/** Config plus the freehold.yaml it came from (providers, routes, privacy, offline). */
export function commandSettings(
  command: Command,
  overrides: ConfigOverrides = {},
  offline?: boolean,
  configPath?: string,
): Settings {
  const globals = command.optsWithGlobals() as { home?: string; config?: string };
  const path = configPath ?? globals.config;
  return loadSettings({
    overrides: { ...(globals.home ? { home: globals.home } : {}), ...overrides },
    ...(path ? { configPath: path } : {}),
    ...(offline !== undefined ? { offline } : {}),
  });
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

/** The flags every command that talks to a running server takes (as Ollama's CLI reads OLLAMA_HOST). */
export function withServerFlags(command: Command): Command {
  return command
    .option("--host <host>", "the server: host, host:port or a URL (default $FREEHOLD_HOST, else 127.0.0.1:11435)")
    .option("--api-key <key>", "the key to send, when the server requires keys (default $FREEHOLD_API_KEY)");
}

export interface ServerTarget {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:11435. */
  base: string;
  /** The Authorization header when a key was given. */
  headers: Record<string, string>;
}

/**
 * Where a client command sends its requests: `--host` (or the older `--port`/`--url`), else FREEHOLD_HOST and
 * FREEHOLD_PORT, else freehold.yaml's server section, else 127.0.0.1:11435; with `--api-key` or FREEHOLD_API_KEY.
 */
export function serverTarget(
  command: Command,
  options: { host?: string; port?: string; url?: string; apiKey?: string },
): ServerTarget {
  const given = options.url ?? options.host;
  let base: string;
  if (given && /^https?:\/\//i.test(given.trim())) {
    base = given.trim().replace(/\/+$/, "");
  } else {
    const config = commandConfig(command, {
      ...(given ? { host: given } : {}),
      ...(options.port ? { port: options.port } : {}),
    });
    base = serverUrl(config);
  }
  const key = options.apiKey ?? commandConfig(command).apiKey;
  return { base, headers: key ? { authorization: `Bearer ${key}` } : {} };
}

/** A request to the running server, with a message that says what to do when none answers. */
export async function fetchServer(target: ServerTarget, path: string, init: RequestInit = {}): Promise<Response> {
  try {
    return await fetch(`${target.base}${path}`, {
      ...init,
      headers: { ...target.headers, ...(init.headers as Record<string, string> | undefined) },
      signal: init.signal ?? AbortSignal.timeout(30_000),
    });
  } catch {
    throw new Error(
      `no freehold server answered at ${target.base}; start one with \`freehold serve\`, or point at it with --host or FREEHOLD_HOST`,
    );
  }
}

/** The error a server answered, with a hint when it wants a key. */
export async function serverFailure(response: Response, target: ServerTarget): Promise<Error> {
  const body = (await response.json().catch(() => ({}))) as { error?: { message?: string } | string };
  const message = typeof body.error === "string" ? body.error : body.error?.message;
  const hint =
    response.status === 401 && !target.headers.authorization
      ? " (this server requires a key: pass --api-key KEY or set FREEHOLD_API_KEY)"
      : "";
  return new Error(
    `the server at ${target.base} answered ${response.status}: ${message ?? response.statusText}${hint}`,
  );
}
