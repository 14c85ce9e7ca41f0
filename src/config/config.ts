import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";
import { parseKeepAlive } from "../core/duration.js";
import { flashAttentionModes, kvCacheTypes, memorySettingsProblem } from "../core/memorySettings.js";

/**
 * The only reader of the environment. Every key has a description; the result is validated and frozen,
 * and passed down explicitly (nothing deeper reads process.env).
 */
export const environmentKeys = {
  FREEHOLD_HOME: "Data directory: model blobs, manifests, database, config. Default ~/.freehold.",
  FREEHOLD_HOST:
    "Address `freehold serve` listens on and the CLI talks to, as Ollama's OLLAMA_HOST: host, host:port or a URL. Default 127.0.0.1 (loopback only).",
  FREEHOLD_PORT: "Port `freehold serve` listens on. Default 11435.",
  FREEHOLD_THREADS: "CPU threads per model runner; 0 or unset picks automatically.",
  FREEHOLD_DRAIN_TIMEOUT: "Seconds to let in-flight answers finish on shutdown. Default 10; 0 aborts at once.",
  FREEHOLD_LOG_LEVEL: "Log level: fatal, error, warn, info, debug, trace, silent. Default info.",
  FREEHOLD_KEEP_ALIVE:
    "How long an idle model stays loaded: seconds or a duration (90s, 5m, 1h30m). Default 5m; -1 keeps it loaded.",
  FREEHOLD_CONTEXT_SIZE:
    "Context size (tokens) per loaded model, capped by what the model was trained on. Default 8192.",
  FREEHOLD_ALLOWED_HOSTS: "Comma-separated extra Host header names to accept (DNS-rebinding defence); '*' accepts any.",
  FREEHOLD_ORIGINS:
    "Comma-separated web origins (scheme://host[:port], or a prefix ending in *) whose pages may call the API, beyond loopback ones; '*' allows any (unsafe on a keyless server).",
  FREEHOLD_MAX_BODY_BYTES: "Largest request body accepted, in bytes. Default 8388608 (8 MiB).",
  FREEHOLD_PARALLEL: "Requests one loaded model answers at once (sequences decoded in shared batches). Default 4.",
  FREEHOLD_MAX_QUEUE:
    "Requests that may wait per model when all its slots are busy; past it, 503 with Retry-After. Default 64.",
  FREEHOLD_QUEUE_TIMEOUT: "Seconds a request may wait for a slot before a 503. Default 120.",
  FREEHOLD_GPU_LAYERS:
    "Layers to offload to a GPU: auto (as many as fit), max, or a number (0 = CPU only). Default auto.",
  FREEHOLD_MEMORY_BUDGET:
    "Memory all loaded models may use together (bytes, or like 8GiB / 512MB). Default: 90% of the machine's.",
  FREEHOLD_KV_CACHE_TYPE:
    "KV cache element type, as Ollama's OLLAMA_KV_CACHE_TYPE: f16, q8_0 (about half the memory) or q4_0 (about a quarter). Default f16; a profile may set its own.",
  FREEHOLD_FLASH_ATTENTION:
    "Flash attention: auto (llama.cpp decides), on or off. Default auto; a quantized KV cache needs it (auto or on).",
  FREEHOLD_CONFIG:
    "The freehold.yaml to read (providers, routes, privacy). Default $FREEHOLD_HOME/freehold.yaml if present.",
  FREEHOLD_DATABASE_URL:
    "postgres://user:password@host:5432/db keeps keys, limits, ledger and audit in PostgreSQL (replicas share it). Default: the SQLite file in FREEHOLD_HOME.",
  FREEHOLD_OFFLINE: "1 forbids every request from leaving the machine, even with remote providers configured.",
  FREEHOLD_AUDIT_KEY:
    "Secret (at least 32 characters) that keys the audit trail's hash chain, instead of the key file. Never logged.",
  FREEHOLD_AUDIT_KEY_FILE:
    "File holding the audit trail's key (created 0600 on first use); its witness audit.key.head is kept beside it. Default $FREEHOLD_HOME/audit.key.",
  HF_ENDPOINT:
    "Hugging Face hub that `freehold pull` uses (a mirror, or a test server). Default https://huggingface.co.",
  FREEHOLD_API_KEY:
    "The key the CLI sends to a running server (ps, stop, explain, as --api-key does) and the key `freehold mcp` acts as (its limits, model scopes and audit name); needed once keys exist.",
  FREEHOLD_ENGINE:
    "Which engine runs local models: auto (node-llama-cpp, and llama-server for models with a vision projector), node-llama-cpp, or llama-server. Default auto.",
  FREEHOLD_LLAMA_SERVER:
    "Path to a llama-server binary for the llama-server engine. Default: the one `freehold engine build` cached under FREEHOLD_HOME/engines.",
  HF_TOKEN: "Hugging Face access token for gated or private repositories; sent only to HF_ENDPOINT's own host.",
} as const;

const portSchema = z.coerce.number().int().min(0).max(65535);

const configSchema = z.object({
  home: z.string().min(1),
  host: z.string().min(1),
  port: portSchema,
  threads: z.coerce.number().int().min(0).max(1024),
  drainTimeoutSeconds: z.coerce.number().min(0).max(3600),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
  keepAliveSeconds: z.coerce.number().int().min(-1),
  contextSize: z.coerce
    .number()
    .int()
    .min(64)
    .max(1 << 22),
  allowedHosts: z.array(z.string().min(1)),
  origins: z.array(
    z
      .string()
      .regex(
        /^(\*|[a-z][a-z0-9+.-]*:\/\/[^/\s]*)$/i,
        "each origin is scheme://host[:port] (no path), a prefix of one ending in *, or * for any",
      ),
  ),
  maxBodyBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .max(1 << 30),
  parallel: z.coerce.number().int().min(1).max(64),
  maxQueue: z.coerce.number().int().min(0).max(100_000),
  queueTimeoutSeconds: z.coerce.number().min(0.001).max(86_400),
  memoryBudget: z.number().int().min(0),
  kvCacheType: z.enum(kvCacheTypes),
  flashAttention: z.enum(flashAttentionModes),
  gpuLayers: z.union([z.literal("auto"), z.literal("max"), z.coerce.number().int().min(0).max(10_000)]),
  hfEndpoint: z.url({ protocol: /^https?$/ }),
  hfToken: z.string().min(1).optional(),
  apiKey: z.string().min(1).optional(),
  offline: z.boolean(),
  databaseUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\/./i, "must be a postgres:// or postgresql:// URL (unset it for the SQLite file)")
    .optional(),
  // Not checked here: an invalid value would be quoted in the error; src/control/auditKey.ts says what is wrong.
  auditKey: z.string().optional(),
  auditKeyFile: z.string().min(1),
  engine: z.enum(["auto", "node-llama-cpp", "llama-server"], {
    error: "must be auto, node-llama-cpp or llama-server",
  }),
  llamaServer: z.string().min(1).optional(),
});

export type Config = Readonly<z.infer<typeof configSchema>>;

export interface ConfigOverrides {
  home?: string;
  host?: string;
  port?: number | string;
  threads?: number | string;
  drainTimeoutSeconds?: number | string;
  logLevel?: string;
  keepAliveSeconds?: number | string;
  contextSize?: number | string;
  allowedHosts?: string[];
  origins?: string[];
  maxBodyBytes?: number | string;
  parallel?: number | string;
  maxQueue?: number | string;
  queueTimeoutSeconds?: number | string;
  memoryBudget?: number | string;
  kvCacheType?: string;
  flashAttention?: string;
  gpuLayers?: number | string;
  hfEndpoint?: string;
  offline?: boolean;
  databaseUrl?: string;
  apiKey?: string;
  engine?: string;
  llamaServer?: string;
}

const byteUnits: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/** "8GiB", "512MB", "1e9" or a number → bytes; NaN (rejected by the schema) when it is none of those. */
export function parseByteSize(value: number | string): number {
  if (typeof value === "number") return value;
  const match = /^\s*([\d.]+(?:e\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  const unit = match ? byteUnits[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) return Number.NaN;
  return Math.round(Number(match[1]) * unit);
}

/** Config fields → the environment variable that sets each (so an error names what the person set). */
const variableOf: Partial<Record<keyof Config, string>> = {
  home: "FREEHOLD_HOME",
  host: "FREEHOLD_HOST",
  port: "FREEHOLD_PORT",
  threads: "FREEHOLD_THREADS",
  drainTimeoutSeconds: "FREEHOLD_DRAIN_TIMEOUT",
  logLevel: "FREEHOLD_LOG_LEVEL",
  keepAliveSeconds: "FREEHOLD_KEEP_ALIVE",
  contextSize: "FREEHOLD_CONTEXT_SIZE",
  allowedHosts: "FREEHOLD_ALLOWED_HOSTS",
  maxBodyBytes: "FREEHOLD_MAX_BODY_BYTES",
  parallel: "FREEHOLD_PARALLEL",
  maxQueue: "FREEHOLD_MAX_QUEUE",
  queueTimeoutSeconds: "FREEHOLD_QUEUE_TIMEOUT",
  memoryBudget: "FREEHOLD_MEMORY_BUDGET",
  kvCacheType: "FREEHOLD_KV_CACHE_TYPE",
  flashAttention: "FREEHOLD_FLASH_ATTENTION",
  gpuLayers: "FREEHOLD_GPU_LAYERS",
  hfEndpoint: "HF_ENDPOINT",
  apiKey: "FREEHOLD_API_KEY",
  engine: "FREEHOLD_ENGINE",
  llamaServer: "FREEHOLD_LLAMA_SERVER",
};

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

/** Host and port from the flags and the environment; a port written in both the host and the port setting must agree. */
function hostAndPort(
  overrides: ConfigOverrides,
  env: NodeJS.ProcessEnv,
): { host: string; port: number | string | undefined } {
  const [hostText, hostSource] =
    overrides.host !== undefined
      ? [overrides.host, "--host"]
      : env.FREEHOLD_HOST
        ? [env.FREEHOLD_HOST, "FREEHOLD_HOST"]
        : ["127.0.0.1", "default"];
  let parsed: { host: string; port?: number };
  try {
    parsed = parseHostSetting(hostText);
  } catch (error) {
    throw new ConfigValueError(`${hostSource}: ${(error as Error).message}`);
  }
  const [port, portSource] =
    overrides.port !== undefined
      ? [overrides.port, "--port"]
      : env.FREEHOLD_PORT
        ? [env.FREEHOLD_PORT, "FREEHOLD_PORT"]
        : [undefined, "default"];
  if (parsed.port !== undefined && port !== undefined && Number(port) !== parsed.port)
    throw new ConfigValueError(
      `${hostSource} names port ${parsed.port} but ${portSource} says ${port}: set the port in one place`,
    );
  return { host: parsed.host, port: port ?? parsed.port };
}

/** FREEHOLD_KEEP_ALIVE / --keep-alive: seconds or a duration ("5m"); negative keeps models loaded. → whole seconds. */
function keepAliveSeconds(value: number | string, source: string): number {
  try {
    const ms = parseKeepAlive(value, source);
    return ms < 0 ? -1 : Math.round(ms / 1000);
  } catch (error) {
    throw new ConfigValueError((error as Error).message);
  }
}

/** Builds the one validated Config from flags (highest precedence), then the environment, then defaults. */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const { host, port } = hostAndPort(overrides, env);
  const keepAlive = overrides.keepAliveSeconds ?? env.FREEHOLD_KEEP_ALIVE;
  const home = resolve(overrides.home ?? env.FREEHOLD_HOME ?? join(homedir(), ".freehold"));
  const raw = {
    home,
    host,
    port: port ?? 11435,
    threads: overrides.threads ?? env.FREEHOLD_THREADS ?? 0,
    drainTimeoutSeconds: overrides.drainTimeoutSeconds ?? env.FREEHOLD_DRAIN_TIMEOUT ?? 10,
    logLevel: overrides.logLevel ?? env.FREEHOLD_LOG_LEVEL ?? "info",
    keepAliveSeconds:
      keepAlive === undefined || keepAlive === ""
        ? 300
        : keepAliveSeconds(
            keepAlive,
            overrides.keepAliveSeconds !== undefined ? "--keep-alive" : "FREEHOLD_KEEP_ALIVE",
          ),
    contextSize: overrides.contextSize ?? env.FREEHOLD_CONTEXT_SIZE ?? 8192,
    allowedHosts:
      overrides.allowedHosts ??
      (env.FREEHOLD_ALLOWED_HOSTS ?? "")
        .split(",")
        .map((h) => h.trim())
        .filter(Boolean),
    origins:
      overrides.origins ??
      (env.FREEHOLD_ORIGINS ?? "")
        .split(",")
        .map((origin) => origin.trim())
        .filter(Boolean),
    maxBodyBytes: overrides.maxBodyBytes ?? env.FREEHOLD_MAX_BODY_BYTES ?? 8 * 1024 * 1024,
    parallel: overrides.parallel ?? env.FREEHOLD_PARALLEL ?? 4,
    maxQueue: overrides.maxQueue ?? env.FREEHOLD_MAX_QUEUE ?? 64,
    queueTimeoutSeconds: overrides.queueTimeoutSeconds ?? env.FREEHOLD_QUEUE_TIMEOUT ?? 120,
    memoryBudget: parseByteSize(overrides.memoryBudget ?? env.FREEHOLD_MEMORY_BUDGET ?? 0),
    kvCacheType: (overrides.kvCacheType ?? env.FREEHOLD_KV_CACHE_TYPE ?? "f16").toLowerCase(),
    flashAttention: (overrides.flashAttention ?? env.FREEHOLD_FLASH_ATTENTION ?? "auto").toLowerCase(),
    gpuLayers: overrides.gpuLayers ?? env.FREEHOLD_GPU_LAYERS ?? "auto",
    hfEndpoint: overrides.hfEndpoint ?? env.HF_ENDPOINT ?? "https://huggingface.co",
    ...(env.HF_TOKEN ? { hfToken: env.HF_TOKEN } : {}),
    ...((overrides.databaseUrl ?? env.FREEHOLD_DATABASE_URL)
      ? { databaseUrl: overrides.databaseUrl ?? env.FREEHOLD_DATABASE_URL }
      : {}),
    offline: overrides.offline ?? ["1", "true", "yes"].includes((env.FREEHOLD_OFFLINE ?? "").toLowerCase()),
    ...((overrides.apiKey ?? env.FREEHOLD_API_KEY) ? { apiKey: overrides.apiKey ?? env.FREEHOLD_API_KEY } : {}),
    ...(env.FREEHOLD_AUDIT_KEY ? { auditKey: env.FREEHOLD_AUDIT_KEY } : {}),
    auditKeyFile: resolve(env.FREEHOLD_AUDIT_KEY_FILE || join(home, "audit.key")),
    engine: overrides.engine ?? (env.FREEHOLD_ENGINE || "auto"),
    ...((overrides.llamaServer ?? env.FREEHOLD_LLAMA_SERVER)
      ? { llamaServer: resolve(overrides.llamaServer ?? env.FREEHOLD_LLAMA_SERVER ?? "") }
      : {}),
  };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? "config") as keyof Config;
    const variable = variableOf[key];
    // Name what the person set: the environment variable when it (not a flag or the file) supplied the value.
    const fromEnvironment =
      variable !== undefined &&
      env[variable] !== undefined &&
      (overrides as Record<string, unknown>)[key] === undefined;
    const shown = fromEnvironment
      ? `${variable}=${JSON.stringify(env[variable])}`
      : `${key} (${JSON.stringify((raw as Record<string, unknown>)[key])})`;
    throw new ConfigValueError(`invalid configuration value for ${shown}: ${issue.message}`);
  }
  const problem = memorySettingsProblem(parsed.data);
  if (problem) {
    const where = (field: "kvCacheType" | "flashAttention") =>
      env[variableOf[field]!] !== undefined && overrides[field] === undefined
        ? `${variableOf[field]}=${env[variableOf[field]!]}`
        : `${field} ${parsed.data[field]}`;
    throw new ConfigValueError(`${where("kvCacheType")} with ${where("flashAttention")}: ${problem}`);
  }
  return Object.freeze(parsed.data);
}

/** The environment for a child process we start (runners): ours, plus what the child needs set before it starts. */
/**
 * Other tools' own variables for where they keep models (`freehold adopt` looks there): Ollama's OLLAMA_MODELS and
 * huggingface_hub's HF_HUB_CACHE / HUGGINGFACE_HUB_CACHE / HF_HOME / XDG_CACHE_HOME. Read here, where every variable
 * is read; they are not freehold settings, so they are not in `environmentKeys`.
 */
export function modelToolsEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string | undefined> {
  const names = ["OLLAMA_MODELS", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"];
  return Object.fromEntries(names.map((name) => [name, env[name]]));
}

export function childEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...extra };
}
