import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { isMap, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import { z } from "zod";
import { flashAttentionModes, kvCacheTypes } from "../core/memorySettings.js";
import { checkOwnerPattern } from "../core/patternSafety.js";
import { type Config, type ConfigOverrides, loadConfig } from "./config.js";

/**
 * `freehold.yaml`: server settings, providers, routes, privacy rules and per-key policies in one file. Strings may
 * reference the environment as `${NAME}` (or `${NAME:-default}`), so secrets stay out of the file. Validated at
 * start; every error names the file, the line and the field.
 */

const seconds = z.number().positive().max(86_400);
const policy = z.enum(["local-only", "redact", "block", "allow"]);

const targetSchema = z.strictObject({
  provider: z.string().min(1),
  model: z.string().min(1),
  /** Share of traffic among the targets of one `balance` group. */
  weight: z.number().positive().max(1000).default(1),
  /** Seconds to wait for the first token before giving up on this target. */
  timeout: seconds.optional(),
});

const tierSchema = z.union([targetSchema, z.strictObject({ balance: z.array(targetSchema).min(1) })]);

const providerSchema = z.strictObject({
  kind: z.enum(["openai", "anthropic", "ollama", "local"]),
  base_url: z.url({ protocol: /^https?$/ }).optional(),
  api_key: z.string().min(1).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  /** Default per-target timeout (seconds to the first token). */
  timeout: seconds.optional(),
  /** Seconds of silence between two chunks of an answer before it is given up (default 60). */
  idle_timeout: seconds.optional(),
  /** Anthropic: max_tokens when the client sets none. */
  max_tokens: z.number().int().positive().optional(),
  /** Seconds between health probes; 0 = no probes (the circuit breaker still applies). */
  health_check: z.number().min(0).max(86_400).optional(),
});

/**
 * An MCP server (docs/mcp.md): a program started on this machine and spoken to over stdio (`command`), or a
 * Streamable HTTP endpoint (`url`). Where its calls go decides whether it is remote.
 */
const mcpServerSchema = z.strictObject({
  /** The program and its arguments, started without a shell. */
  command: z.array(z.string().min(1)).min(1).optional(),
  /** Extra environment for the program (on top of a minimal safe one: PATH, HOME, …; never freehold's secrets). */
  env: z
    .record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "environment names are letters, digits, _"), z.string())
    .optional(),
  cwd: z.string().min(1).optional(),
  url: z.url({ protocol: /^https?$/ }).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  /** Whether calls leave the machine. Default: a stdio server is local, a URL is remote unless on loopback. */
  remote: z.boolean().optional(),
  /** Seconds one tool call (or the connection) may take. */
  timeout: seconds.default(30),
  /** Longest tool result kept, in bytes; longer results are cut and say so. */
  max_result_bytes: z
    .number()
    .int()
    .min(256)
    .max(16 * 1024 * 1024)
    .default(65_536),
  /** What one call costs (USD), charged to the calling key's ledger row and budget, as a model's price is. */
  price_per_call_usd: z.number().min(0).max(1000).optional(),
});

const mcpServerName = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "MCP server names are 1-64 letters, digits, _ -");

const routeSchema = z.strictObject({
  targets: z.array(tierSchema).min(1),
  /** MCP servers whose tools this route's model may call, run by freehold (the client never sees them). */
  mcp: z.array(mcpServerName).max(16).optional(),
  /** What happens to a request that carries personal data or secrets. Default: local-only (fails closed). */
  privacy: policy.optional(),
  /** Extra tries of the same target on a retryable error, before falling back. */
  retries: z.number().int().min(0).max(10).default(1),
  /** Seconds before the first retry; doubles each time. */
  backoff: z.number().min(0).max(60).default(0.2),
  /** The longest Retry-After we wait for before retrying; longer ones fall back at once. */
  max_retry_wait: z.number().min(0).max(600).default(2),
  breaker: z
    .strictObject({
      failures: z.number().int().min(1).max(1000).default(3),
      cooldown: z.number().min(0).max(86_400).default(30),
    })
    .default({ failures: 3, cooldown: 30 }),
});

const serverSchema = z.strictObject({
  host: z.string().min(1).optional(),
  port: z.number().int().min(0).max(65535).optional(),
  threads: z.number().int().min(0).optional(),
  context_size: z.number().int().optional(),
  keep_alive: z.number().int().min(-1).optional(),
  drain_timeout: z.number().min(0).optional(),
  allowed_hosts: z.array(z.string().min(1)).optional(),
  origins: z.array(z.string().min(1)).optional(),
  max_body_bytes: z.union([z.number().int(), z.string()]).optional(),
  parallel: z.number().int().min(1).optional(),
  max_queue: z.number().int().min(0).optional(),
  queue_timeout: z.number().positive().optional(),
  memory_budget: z.union([z.number().int(), z.string()]).optional(),
  gpu_layers: z.union([z.number().int(), z.enum(["auto", "max"])]).optional(),
  kv_cache_type: z.enum(kvCacheTypes).optional(),
  // YAML writers may spell it true/false.
  flash_attention: z
    .union([z.enum(flashAttentionModes), z.boolean()])
    .transform((value) => (value === true ? "on" : value === false ? "off" : value))
    .optional(),
  log_level: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).optional(),
  /** Which engine runs local models (FREEHOLD_ENGINE). */
  engine: z.enum(["auto", "node-llama-cpp", "llama-server"]).optional(),
  /** A llama-server binary (FREEHOLD_LLAMA_SERVER). */
  llama_server: z.string().min(1).optional(),
});

export const fileConfigSchema = z
  .strictObject({
    server: serverSchema.default({}),
    /** The control plane's database (FREEHOLD_DATABASE_URL beats it); absent: the SQLite file in FREEHOLD_HOME. */
    database: z.strictObject({ url: z.string().min(1).optional() }).default({}),
    /** Forbid every request from leaving the machine, even with providers configured. */
    offline: z.boolean().default(false),
    providers: z
      .record(z.string().regex(/^[\w.-]+$/, "provider names are letters, digits, _ . -"), providerSchema)
      .default({}),
    routes: z.record(z.string().min(1), routeSchema).default({}),
    mcp_servers: z.record(mcpServerName, mcpServerSchema).default({}),
    /** The most model turns one request may take while calling MCP tools. */
    mcp_max_steps: z.number().int().min(1).max(64).default(8),
    /**
     * Whether a Responses request may name an MCP server by URL (`server_url`): connected as a remote server for
     * that request, under the egress rules (docs/mcp.md, docs/security.md). Off by default.
     */
    mcp_allow_client_servers: z.boolean().default(false),
    privacy: z
      .strictObject({
        /** The policy of routes that set none. */
        default: policy.default("local-only"),
        patterns: z.record(z.string().regex(/^[\w-]+$/), z.string().min(1)).default({}),
        keywords: z.record(z.string().regex(/^[\w-]+$/), z.array(z.string().min(1))).default({}),
        disable: z.array(z.string()).default([]),
        /** Scan budget per request (characters of text, milliseconds); past it the request counts as unscannable. */
        max_scan_chars: z.number().int().positive().optional(),
        max_scan_ms: z.number().positive().optional(),
      })
      .default({ default: "local-only", patterns: {}, keywords: {}, disable: [] }),
    /** Per API key (by name): a privacy policy that overrides the route's, or local_only for everything. */
    keys: z
      .record(z.string().min(1), z.strictObject({ privacy: policy.optional(), local_only: z.boolean().optional() }))
      .default({}),
  })
  .superRefine((file, context) => {
    for (const [name, provider] of Object.entries(file.providers)) {
      if (provider.kind !== "local" && !provider.base_url)
        context.addIssue({
          code: "custom",
          path: ["providers", name, "base_url"],
          message: `provider ${name} (${provider.kind}) needs a base_url`,
        });
    }
    for (const [name, pattern] of Object.entries(file.privacy.patterns)) {
      const source = pattern.replace(/^\(\?i\)/, "");
      try {
        new RegExp(source);
      } catch (error) {
        context.addIssue({
          code: "custom",
          path: ["privacy", "patterns", name],
          message: `not a valid regular expression: ${(error as Error).message}`,
        });
        continue;
      }
      // Request bodies are scanned with it: refuse what could not be scanned in bounded time, and say why.
      const checked = checkOwnerPattern(source);
      if (!checked.ok)
        context.addIssue({ code: "custom", path: ["privacy", "patterns", name], message: checked.reason });
    }
    for (const [name, server] of Object.entries(file.mcp_servers)) {
      const problem = mcpServerProblem(server);
      if (problem)
        context.addIssue({ code: "custom", path: ["mcp_servers", name, ...problem.path], message: problem.message });
    }
    for (const [name, route] of Object.entries(file.routes)) {
      route.mcp?.forEach((server, i) => {
        if (!file.mcp_servers[server])
          context.addIssue({
            code: "custom",
            path: ["routes", name, "mcp", i],
            message: `no MCP server named ${JSON.stringify(server)} (known: ${Object.keys(file.mcp_servers).join(", ") || "none; add it under mcp_servers"})`,
          });
      });
      route.targets.forEach((tier, i) => {
        const targets = "balance" in tier ? tier.balance : [tier];
        targets.forEach((target, j) => {
          if (target.provider !== "local" && !file.providers[target.provider])
            context.addIssue({
              code: "custom",
              path: ["routes", name, "targets", i, ...("balance" in tier ? ["balance", j] : []), "provider"],
              message: `no provider named ${JSON.stringify(target.provider)} (known: local${Object.keys(file.providers)
                .map((p) => `, ${p}`)
                .join("")})`,
            });
        });
      });
    }
  });

export type FileConfig = z.infer<typeof fileConfigSchema>;
export type McpServerConfig = z.infer<typeof mcpServerSchema>;

function isLoopbackHostname(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Whether an MCP server's calls leave the machine: its own `remote`, else stdio = local, a URL = off loopback. */
export function mcpServerIsRemote(server: Pick<McpServerConfig, "url" | "remote">): boolean {
  if (server.remote !== undefined) return server.remote;
  return server.url !== undefined && !isLoopbackHostname(new URL(server.url).hostname);
}

function mcpServerProblem(server: McpServerConfig): { path: string[]; message: string } | undefined {
  if (server.command && server.url)
    return { path: ["url"], message: "give either command (a stdio server) or url (an HTTP server), not both" };
  if (!server.command && !server.url)
    return { path: [], message: "needs command: [program, args…] (a stdio server) or url: https://… (an HTTP server)" };
  if (server.url && (server.env || server.cwd))
    return {
      path: [server.env ? "env" : "cwd"],
      message: "env and cwd are for stdio servers (command); an HTTP server has headers",
    };
  if (server.command && server.headers)
    return { path: ["headers"], message: "headers are for HTTP servers (url); a stdio server takes env" };
  if (server.url && server.remote === false && !isLoopbackHostname(new URL(server.url).hostname))
    return {
      path: ["remote"],
      message: `${new URL(server.url).host} is not this machine, so the server is remote: remove remote: false`,
    };
  return undefined;
}
export type RouteConfig = FileConfig["routes"][string];
export type TargetConfig = z.infer<typeof targetSchema>;
export type ProviderConfig = FileConfig["providers"][string];
export type PrivacyPolicy = z.infer<typeof policy>;

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

/** The config file to read: `--config`, else $FREEHOLD_CONFIG, else $FREEHOLD_HOME/freehold.yaml when it exists. */
export function configFilePath(
  explicit: string | undefined,
  home: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): { path: string; required: boolean } {
  const chosen = explicit ?? env.FREEHOLD_CONFIG;
  if (chosen) return { path: resolve(chosen), required: true };
  return {
    path: join(resolve(home ?? env.FREEHOLD_HOME ?? join(homedir(), ".freehold")), "freehold.yaml"),
    required: false,
  };
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

/** server.* keys of the file → the Config overrides they stand for, with the environment variable that beats each. */
const serverKeys: Record<string, [keyof ConfigOverrides, string]> = {
  host: ["host", "FREEHOLD_HOST"],
  port: ["port", "FREEHOLD_PORT"],
  threads: ["threads", "FREEHOLD_THREADS"],
  context_size: ["contextSize", "FREEHOLD_CONTEXT_SIZE"],
  keep_alive: ["keepAliveSeconds", "FREEHOLD_KEEP_ALIVE"],
  drain_timeout: ["drainTimeoutSeconds", "FREEHOLD_DRAIN_TIMEOUT"],
  allowed_hosts: ["allowedHosts", "FREEHOLD_ALLOWED_HOSTS"],
  origins: ["origins", "FREEHOLD_ORIGINS"],
  max_body_bytes: ["maxBodyBytes", "FREEHOLD_MAX_BODY_BYTES"],
  parallel: ["parallel", "FREEHOLD_PARALLEL"],
  max_queue: ["maxQueue", "FREEHOLD_MAX_QUEUE"],
  queue_timeout: ["queueTimeoutSeconds", "FREEHOLD_QUEUE_TIMEOUT"],
  memory_budget: ["memoryBudget", "FREEHOLD_MEMORY_BUDGET"],
  kv_cache_type: ["kvCacheType", "FREEHOLD_KV_CACHE_TYPE"],
  flash_attention: ["flashAttention", "FREEHOLD_FLASH_ATTENTION"],
  gpu_layers: ["gpuLayers", "FREEHOLD_GPU_LAYERS"],
  log_level: ["logLevel", "FREEHOLD_LOG_LEVEL"],
  engine: ["engine", "FREEHOLD_ENGINE"],
  llama_server: ["llamaServer", "FREEHOLD_LLAMA_SERVER"],
};

export interface Settings {
  config: Config;
  /** null: no config file; everything is local, as without one. */
  file: FileConfig | null;
  filePath: string | null;
  offline: boolean;
}

/**
 * Config from flags, then the environment, then freehold.yaml, then defaults; plus the file's providers and routes.
 * `offline`: the --offline flag (undefined when not given), else FREEHOLD_OFFLINE, else the file's `offline`.
 */
export function loadSettings(
  options: { overrides?: ConfigOverrides; configPath?: string; offline?: boolean } = {},
  env: NodeJS.ProcessEnv = process.env,
): Settings {
  const overrides = options.overrides ?? {};
  const location = configFilePath(options.configPath, overrides.home, env);
  const file = readFileConfig(location, env);
  const merged: Record<string, unknown> = { ...overrides };
  for (const [key, [field, variable]] of Object.entries(serverKeys)) {
    const value = file?.server[key as keyof FileConfig["server"]];
    if (value !== undefined && merged[field] === undefined && env[variable] === undefined) merged[field] = value;
  }
  if (file?.database.url !== undefined && merged.databaseUrl === undefined && !env.FREEHOLD_DATABASE_URL)
    merged.databaseUrl = file.database.url;
  let config: Config;
  try {
    config = loadConfig(merged as ConfigOverrides, env);
  } catch (error) {
    throw file ? new ConfigFileError(`${(error as Error).message} (flags, environment or ${location.path})`) : error;
  }
  const offlineEnv = env.FREEHOLD_OFFLINE;
  const offline =
    options.offline ??
    (offlineEnv !== undefined && offlineEnv !== "" ? /^(1|true|yes)$/i.test(offlineEnv) : (file?.offline ?? false));
  return { config, file, filePath: file ? location.path : null, offline };
}
