import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isMap, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { type Config, type ConfigOverrides, type FileSettings, resolveConfig } from "./config.js";
import {
  type FileConfig,
  fileConfigSchema,
  providerSchema,
  routeSchema,
  serverSchema,
  targetSchema,
} from "./fileSchema.js";
import { type SettingName, settingNames, settings } from "./settings.js";

export * from "./fileSchema.js";

/** freehold.yaml problems, each `file:line: field: what is wrong`; the message lists them one per line. */
export class ConfigFileError extends Error {
  constructor(
    message: string,
    readonly problems: readonly string[] = [message],
  ) {
    super(message);
  }
}

function lineOf(
  doc: ReturnType<typeof parseDocument>,
  counter: LineCounter,
  path: readonly PropertyKey[],
): number | undefined {
  // The deepest node that exists on the path (a missing field is reported at its parent).
  for (let depth = path.length; depth >= 0; depth--) {
    const node = doc.getIn(path.slice(0, depth) as unknown[], true) as Node | undefined;
    if (node && typeof node === "object" && "range" in node && node.range) return counter.linePos(node.range[0]).line;
    if (depth === 0 && doc.contents?.range) return counter.linePos(doc.contents.range[0]).line;
  }
  return undefined;
}

function fieldName(path: readonly PropertyKey[]): string {
  return (
    path.map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`)).join("") ||
    "(top level)"
  );
}

/** The fields each section accepts, by where it sits (for "did you mean" on an unknown field). */
function fieldsAt(path: readonly PropertyKey[]): string[] {
  const keys = (schema: { shape: object }) => Object.keys(schema.shape);
  const [section, , third, , fifth] = path;
  if (path.length === 0) return keys(fileConfigSchema);
  if (section === "server" && path.length === 1) return keys(serverSchema);
  if (section === "providers" && path.length === 2) return keys(providerSchema);
  if (section === "routes" && path.length === 2) return keys(routeSchema);
  if (section === "routes" && third === "breaker") return ["failures", "cooldown"];
  if (section === "routes" && third === "targets")
    return fifth === "balance" || path.length === 4 ? [...keys(targetSchema), "balance"] : keys(targetSchema);
  if (section === "privacy" && path.length === 1) return ["default", "patterns", "keywords", "disable"];
  if (section === "keys" && path.length === 2) return ["privacy", "local_only"];
  return [];
}

/** Edit distance, for spelling suggestions (short keys, so the quadratic table is nothing). */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length]!;
}

/**
 * What to say about an unknown field: a close spelling at the same level ("wieght" → "weight"), or the section it
 * belongs in when it is a field of another one (a top-level `port:` belongs under `server:`).
 */
export function unknownFieldHint(path: readonly PropertyKey[], key: string): string {
  const here = fieldsAt(path);
  const close = here
    .map((candidate) => ({ candidate, d: distance(key.toLowerCase(), candidate) }))
    .filter(({ candidate, d }) => d <= Math.max(1, Math.floor(candidate.length / 3)))
    .sort((a, b) => a.d - b.d)[0];
  if (close) return `unknown field; did you mean ${close.candidate}?`;
  if (path.length === 0) {
    const homes: [string, string[]][] = [
      ["server", fieldsAt(["server"])],
      ["privacy", fieldsAt(["privacy"])],
    ];
    const home = homes.find(([, fields]) => fields.includes(key));
    if (home) return `unknown top-level field; ${key} belongs under ${home[0]}: (indent it there)`;
  }
  return here.length > 0
    ? `unknown field (this section takes: ${here.join(", ")})`
    : "unknown field (check the spelling)";
}

/** Replaces `${NAME}` / `${NAME:-default}` in every string; a variable that is not set is reported, naming it. */
function substitute(
  value: unknown,
  env: NodeJS.ProcessEnv,
  path: PropertyKey[],
  fail: (path: PropertyKey[], message: string) => void,
): unknown {
  if (typeof value === "string") {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_, name: string, fallback?: string) => {
      const found = env[name];
      if (found !== undefined && found !== "") return found;
      if (fallback !== undefined) return fallback;
      fail(path, `the environment variable ${name} is not set (referenced as \${${name}})`);
      return "";
    });
  }
  if (Array.isArray(value)) return value.map((item, i) => substitute(item, env, [...path, i], fail));
  if (value && typeof value === "object")
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, substitute(item, env, [...path, key], fail)]),
    );
  return value;
}

/**
 * Every problem in freehold.yaml text, each as `file:line: field: what is wrong`, in file order; the parsed config
 * when there are none. `${ENV}` references are resolved from `env`.
 */
export function checkFileConfig(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
): { config: FileConfig; problems: [] } | { config: null; problems: string[] } {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((syntax) => {
      const line = syntax.linePos?.[0]?.line ?? counter.linePos(syntax.pos[0]).line;
      return `${file}:${line}: ${syntax.message.split("\n")[0]}`;
    });
    return { config: null, problems };
  }
  const found: { line: number; text: string }[] = [];
  const fail = (path: readonly PropertyKey[], message: string): void => {
    const line = lineOf(doc, counter, path);
    found.push({ line: line ?? 0, text: `${file}${line ? `:${line}` : ""}: ${fieldName(path)}: ${message}` });
  };
  const raw = doc.contents === null ? {} : (doc.toJS() as unknown);
  if (raw !== null && (typeof raw !== "object" || Array.isArray(raw)) && !isMap(doc.contents)) {
    fail([], "the file must be a mapping of sections (server, providers, routes, privacy, keys)");
    return { config: null, problems: found.map((p) => p.text) };
  }
  const unresolved = new Set<string>();
  const resolved = substitute(raw ?? {}, env, [], (path, message) => {
    unresolved.add(fieldName(path));
    fail(path, message);
  });
  const parsed = fileConfigSchema.safeParse(resolved);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      // A field whose ${VARIABLE} is missing was already reported; its empty stand-in would only repeat it.
      if (unresolved.has(fieldName(issue.path))) continue;
      if (issue.code === "unrecognized_keys") {
        for (const key of issue.keys) fail([...issue.path, key], unknownFieldHint(issue.path, key));
      } else if (issue.code === "invalid_key") {
        // A record's key failed its own rule: say that rule, not zod's generic "Invalid key in record".
        fail(issue.path, issue.issues[0]?.message ?? issue.message);
      } else if (issue.code === "invalid_union" && isSeq(doc.getIn(issue.path.slice(0, -1) as unknown[], true))) {
        fail(issue.path, "must be a target ({provider, model}) or a group ({balance: [targets]})");
      } else {
        fail(issue.path, issue.message);
      }
    }
  }
  if (found.length > 0 || !parsed.success) {
    const problems = [...new Set(found.sort((a, b) => a.line - b.line).map((p) => p.text))];
    return { config: null, problems };
  }
  return { config: parsed.data, problems: [] };
}

/** Parses and validates freehold.yaml text, or throws one error listing every problem (one per line). */
export function parseFileConfig(text: string, file: string, env: NodeJS.ProcessEnv = process.env): FileConfig {
  const checked = checkFileConfig(text, file, env);
  if (checked.config === null) throw new ConfigFileError(checked.problems.join("\n"), checked.problems);
  return checked.config;
}

/** The config file to read: `--config`, else $FREEHOLD_CONFIG, else freehold.yaml in the data directory if present. */
export function configFilePath(
  explicit: string | undefined,
  home: string,
  configFile: string | undefined,
): { path: string; required: boolean } {
  const chosen = explicit ?? configFile;
  if (chosen) return { path: chosen, required: true };
  return { path: join(home, "freehold.yaml"), required: false };
}

/** Reads the file (null when there is none at the default place; an error when a named one is missing). */
export function readFileConfig(
  location: { path: string; required: boolean },
  env: NodeJS.ProcessEnv = process.env,
): FileConfig | null {
  if (!existsSync(location.path)) {
    if (location.required) throw new ConfigFileError(`${location.path}: the config file does not exist`);
    return null;
  }
  return parseFileConfig(readFileSync(location.path, "utf8"), location.path, env);
}

/** The table settings the file gives (`server.*`, `offline`, `database.url`), by setting. */
function fileValues(file: FileConfig): FileSettings["values"] {
  const values: FileSettings["values"] = {};
  for (const name of settingNames) {
    const key: string | undefined = (settings[name] as { file?: string }).file;
    if (!key) continue;
    const value = key.split(".").reduce<unknown>((node, part) => (node as Record<string, unknown>)?.[part], file);
    if (value !== undefined) values[name as SettingName] = value;
  }
  return values;
}

export interface Settings {
  config: Config;
  /** null: no config file; everything is local, as without one. */
  file: FileConfig | null;
  filePath: string | null;
  /** `config.offline`: the flag, else FREEHOLD_OFFLINE, else the file's `offline`. */
  offline: boolean;
}

/**
 * Config from flags, then the environment, then freehold.yaml, then defaults; plus the file's providers and routes.
 * The data directory and the file's place are settled first (the file cannot move either), each once.
 */
export function loadSettings(
  options: { overrides?: ConfigOverrides; configPath?: string; offline?: boolean } = {},
  env: NodeJS.ProcessEnv = process.env,
): Settings {
  const overrides: ConfigOverrides = {
    ...options.overrides,
    ...(options.offline !== undefined ? { offline: options.offline } : {}),
    ...(options.configPath !== undefined ? { configFile: options.configPath } : {}),
  };
  const place = resolveConfig({ overrides: pick(overrides, ["home", "configFile"]), env: pick(env, placeVariables) });
  const location = configFilePath(undefined, place.home, place.configFile);
  const file = readFileConfig(location, env);
  let config: Config;
  try {
    config = resolveConfig({
      overrides: { ...overrides, home: place.home },
      env,
      ...(file ? { file: { values: fileValues(file), path: location.path } } : {}),
    });
  } catch (error) {
    // `config check` reports what the file's values do together (a port twice, a KV cache without flash attention).
    throw file ? new ConfigFileError(`${(error as Error).message} (flags, environment or ${location.path})`) : error;
  }
  return { config, file, filePath: file ? location.path : null, offline: config.offline };
}

const placeVariables = [settings.home.env, settings.configFile.env];

function pick<T extends object>(from: T, keys: readonly string[]): T {
  return Object.fromEntries(Object.entries(from).filter(([key]) => keys.includes(key))) as T;
}
