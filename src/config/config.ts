import { memorySettingsProblem } from "../core/memorySettings.js";
import {
  type Config,
  type ConfigOverrides,
  environmentKeys,
  parseByteSize,
  type Setting,
  type SettingName,
  settingNames,
  settings,
} from "./settings.js";

/**
 * The only reader of the environment: the settings table (settings.ts) read from flags, the environment and
 * freehold.yaml's values, in that order, then defaults. The result is validated and frozen, and passed down explicitly
 * (nothing deeper reads process.env).
 */
export { type Config, type ConfigOverrides, environmentKeys, parseByteSize };

/** A setting that cannot be used; the message names the variable or flag the person set. */
export class ConfigValueError extends Error {}

/**
 * A host setting as Ollama reads OLLAMA_HOST: "host", "host:port", "[::1]:port", a bare IPv6 address, or a URL
 * ("http://host:port"; without a port, 80 for http and 443 for https, as Ollama does). An empty host (":12345")
 * stays on loopback: listening on every interface is never a default. `port` is undefined when none was written.
 */
export function parseHostSetting(value: string): { host: string; port?: number } {
  const text = value.trim();
  const problem = (why: string) =>
    new ConfigValueError(`${JSON.stringify(value)} ${why}; write host, host:port or http://host:port`);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      throw problem("is not a valid URL");
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") throw problem("must be an http or https URL");
    const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
    return { host, port: url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80 };
  }
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  const [host, port] = bracketed
    ? [bracketed[1]!, bracketed[2]]
    : text.split(":").length > 2
      ? [text, undefined] // a bare IPv6 address: its colons are not a port
      : [text.split(":")[0]!, text.includes(":") ? text.split(":")[1] : undefined];
  if (port !== undefined && !/^\d{1,5}$/.test(port)) throw problem(`has a port that is not a number (${port})`);
  if (port !== undefined && Number(port) > 65535) throw problem("has a port above 65535");
  return { host: host || "127.0.0.1", ...(port !== undefined ? { port: Number(port) } : {}) };
}

/** Each table variable that is set, by setting. An empty variable counts as unset (as `FOO=` in a compose file). */
export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Partial<Record<SettingName, string>> {
  const found: Partial<Record<SettingName, string>> = {};
  for (const name of settingNames) {
    const value = env[settings[name].env];
    if (value !== undefined && value !== "") found[name] = value;
  }
  return found;
}

/** Values freehold.yaml gave for table settings, and the file's path (for messages). */
export interface FileSettings {
  values: Partial<Record<SettingName, unknown>>;
  path: string;
}

/** Where a value came from: `label` quotes it for an error, `source` names the flag, variable or key. */
interface Supplied {
  value: unknown;
  source: string;
  label: string;
}

/** How an error shows a value: quoted, or not at all for a secret. */
function shown(name: SettingName, value: unknown, quote: (text: string) => string): string {
  return "secret" in settings[name] ? " (value not shown)" : quote(JSON.stringify(value));
}

function supplier(
  overrides: ConfigOverrides,
  environment: Partial<Record<SettingName, string>>,
  file: FileSettings | undefined,
): (name: SettingName) => Supplied | undefined {
  return (name) => {
    const row = settings[name] as unknown as Setting;
    const flag = overrides[name];
    if (flag !== undefined)
      return { value: flag, source: row.flag ?? name, label: `${name}${shown(name, flag, (text) => ` (${text})`)}` };
    const variable = environment[name];
    if (variable !== undefined)
      return { value: variable, source: row.env, label: `${row.env}${shown(name, variable, (text) => `=${text}`)}` };
    const fromFile = file?.values[name];
    if (fromFile !== undefined && row.file)
      return {
        value: fromFile,
        source: row.file,
        label: `${row.file}${shown(name, fromFile, (text) => ` (${text})`)} in ${file!.path}`,
      };
    return undefined;
  };
}

/**
 * Builds the one validated Config from flags (highest precedence), then the environment, then freehold.yaml's
 * values, then the table's defaults. Every error names what the person set and what is allowed.
 */
export function resolveConfig(
  sources: { overrides?: ConfigOverrides; env?: NodeJS.ProcessEnv; file?: FileSettings } = {},
): Config {
  const supplied = supplier(sources.overrides ?? {}, readEnvironment(sources.env ?? process.env), sources.file);
  const parse = (name: SettingName, home: string): unknown => {
    const given = supplied(name);
    const row = settings[name] as unknown as Setting;
    const fallback = typeof row.default === "function" ? (row.default as (home: string) => unknown)(home) : row.default;
    const value = given ? given.value : fallback;
    if (value === undefined) return undefined;
    const parsed = row.schema.safeParse(value);
    if (parsed.success) return parsed.data;
    const label = given?.label ?? `${name} (default ${JSON.stringify(value)})`;
    throw new ConfigValueError(`invalid configuration value for ${label}: ${parsed.error.issues[0]!.message}`);
  };
  const home = parse("home", "") as string;
  const values: Record<string, unknown> = { home };
  for (const name of settingNames) {
    // The port is settled with the host below: "host:port" may carry it.
    if (name === "home" || name === "port") continue;
    const value = parse(name, home);
    if (value !== undefined) values[name] = value;
  }
  Object.assign(
    values,
    hostAndPort(values.host as string, supplied, () => parse("port", home) as number),
  );
  const config = values as Config;
  const problem = memorySettingsProblem(config);
  if (problem) {
    const where = (name: "kvCacheType" | "flashAttention") => {
      const source = supplied(name)?.source;
      return source === settings[name].env ? `${source}=${config[name]}` : `${name} ${config[name]}`;
    };
    throw new ConfigValueError(`${where("kvCacheType")} with ${where("flashAttention")}: ${problem}`);
  }
  return Object.freeze(config);
}

/** The host and port: a port written in both the host and the port setting must agree. */
function hostAndPort(
  hostText: string,
  supplied: (name: SettingName) => Supplied | undefined,
  port: () => number,
): { host: string; port: number } {
  const hostSource = supplied("host")?.source ?? "default";
  let parsed: { host: string; port?: number };
  try {
    parsed = parseHostSetting(hostText);
  } catch (error) {
    throw new ConfigValueError(`${hostSource}: ${(error as Error).message}`);
  }
  const portGiven = supplied("port");
  if (parsed.port === undefined || portGiven === undefined) return { host: parsed.host, port: parsed.port ?? port() };
  const chosen = port();
  if (chosen !== parsed.port)
    throw new ConfigValueError(
      `${hostSource} names port ${parsed.port} but ${portGiven.source} says ${String(portGiven.value)}: set the port in one place`,
    );
  return { host: parsed.host, port: chosen };
}

/** Config from flags, then the environment, then defaults (no freehold.yaml: `loadSettings` reads it too). */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  return resolveConfig({ overrides, env });
}

/**
 * Other tools' own variables for where they keep models (`freehold adopt` looks there): Ollama's OLLAMA_MODELS and
 * huggingface_hub's HF_HUB_CACHE / HUGGINGFACE_HUB_CACHE / HF_HOME / XDG_CACHE_HOME. Read here, where every variable
 * is read; they are not freehold settings, so they are not in `environmentKeys`.
 */
export function modelToolsEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string | undefined> {
  const names = ["OLLAMA_MODELS", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"];
  return Object.fromEntries(names.map((name) => [name, env[name]]));
}

/** The environment for a child process we start (runners): ours, plus what the child needs set before it starts. */
export function childEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...extra };
}
