import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { z } from "zod";

/**
 * The only reader of the environment. Every key has a description; the result is validated and frozen,
 * and passed down explicitly (nothing deeper reads process.env).
 */
export const environmentKeys = {
  FREEHOLD_HOME: "Data directory: model blobs, manifests, database, config. Default ~/.freehold.",
  FREEHOLD_HOST: "Address `freehold serve` listens on. Default 127.0.0.1 (loopback only).",
  FREEHOLD_PORT: "Port `freehold serve` listens on. Default 11435.",
  FREEHOLD_THREADS: "CPU threads per model runner; 0 or unset picks automatically.",
  FREEHOLD_DRAIN_TIMEOUT: "Seconds to let in-flight answers finish on shutdown. Default 10; 0 aborts at once.",
  FREEHOLD_LOG_LEVEL: "Log level: fatal, error, warn, info, debug, trace, silent. Default info.",
  FREEHOLD_KEEP_ALIVE: "How long an idle model stays loaded, in seconds. Default 300; -1 keeps it loaded.",
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
    "The API key `freehold mcp` acts as (its limits, model scopes and audit name); needed once keys exist.",
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
  gpuLayers?: number | string;
  hfEndpoint?: string;
  offline?: boolean;
  databaseUrl?: string;
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

/** Builds the one validated Config from flags (highest precedence), then the environment, then defaults. */
export function loadConfig(overrides: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const home = resolve(overrides.home ?? env.FREEHOLD_HOME ?? join(homedir(), ".freehold"));
  const raw = {
    home,
    host: overrides.host ?? env.FREEHOLD_HOST ?? "127.0.0.1",
    port: overrides.port ?? env.FREEHOLD_PORT ?? 11435,
    threads: overrides.threads ?? env.FREEHOLD_THREADS ?? 0,
    drainTimeoutSeconds: overrides.drainTimeoutSeconds ?? env.FREEHOLD_DRAIN_TIMEOUT ?? 10,
    logLevel: overrides.logLevel ?? env.FREEHOLD_LOG_LEVEL ?? "info",
    keepAliveSeconds: overrides.keepAliveSeconds ?? env.FREEHOLD_KEEP_ALIVE ?? 300,
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
    gpuLayers: overrides.gpuLayers ?? env.FREEHOLD_GPU_LAYERS ?? "auto",
    hfEndpoint: overrides.hfEndpoint ?? env.HF_ENDPOINT ?? "https://huggingface.co",
    ...(env.HF_TOKEN ? { hfToken: env.HF_TOKEN } : {}),
    ...((overrides.databaseUrl ?? env.FREEHOLD_DATABASE_URL)
      ? { databaseUrl: overrides.databaseUrl ?? env.FREEHOLD_DATABASE_URL }
      : {}),
    ...(env.FREEHOLD_API_KEY ? { apiKey: env.FREEHOLD_API_KEY } : {}),
    offline: overrides.offline ?? ["1", "true", "yes"].includes((env.FREEHOLD_OFFLINE ?? "").toLowerCase()),
    ...(env.FREEHOLD_AUDIT_KEY ? { auditKey: env.FREEHOLD_AUDIT_KEY } : {}),
    auditKeyFile: resolve(env.FREEHOLD_AUDIT_KEY_FILE || join(home, "audit.key")),
  };
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = String(issue.path[0] ?? "config");
    throw new Error(
      `invalid configuration value for ${key} (${JSON.stringify((raw as Record<string, unknown>)[key])}): ${issue.message}`,
    );
  }
  return Object.freeze(parsed.data);
}

/** The environment for a child process we start (runners): ours, plus what the child needs set before it starts. */
export function childEnvironment(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { ...process.env, ...extra };
}
