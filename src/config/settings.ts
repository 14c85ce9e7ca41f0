import { homedir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { IMAGE_HOST_ENTRY } from "../core/imageFetch.js";
import { flashAttentionModes, kvCacheTypes } from "../core/memorySettings.js";

/**
 * Every setting once: the environment variable, the freehold.yaml key, the default, the schema and what it means.
 * The environment reader, the file's `server:` section, the `Config` and `ConfigOverrides` types, `serve --help` and
 * README's table (`npm run docs:settings`) are all derived from this table, so a setting cannot be spelled twice.
 *
 * Each schema takes what any source gives (text from the environment, a YAML value, a flag or a library caller's
 * value) and returns the value `Config` holds; it accepts its own output, so a resolved Config passed back in as
 * overrides (`freehold serve` does) reads the same.
 */

import { byteSize, choice, integer, keepAlive, list, numeric, origin, path, yesNo } from "./settingSchemas.js";

export { parseByteSize } from "./settingSchemas.js";

/** One row of the table. `default` is an input of `schema` (a function of the data directory where it lives there). */
export interface Setting<Output = unknown, Input = unknown> {
  /** The environment variable. */
  env: string;
  /** The key in freehold.yaml (dotted: `server.port`), where the file may set it. */
  file?: string;
  /** The command-line flag that sets it, where one does (for messages). */
  flag?: string;
  schema: z.ZodType<Output, Input>;
  default?: Input | ((home: string) => Input);
  /** The default as a person reads it (README, `serve --help`). */
  shown: string;
  /** A secret: its value is never quoted in an error. */
  secret?: true;
  description: string;
}

function setting<Output, Input>(row: Setting<Output, Input>): Setting<Output, Input> {
  return row;
}

export const settings = {
  home: setting({
    env: "FREEHOLD_HOME",
    flag: "--home",
    schema: path,
    default: join(homedir(), ".freehold"),
    shown: "`~/.freehold`",
    description: "Data directory: model blobs, manifests, `freehold.db` (keys, ledger, audit), `freehold.yaml`.",
  }),
  configFile: setting({
    env: "FREEHOLD_CONFIG",
    flag: "--config",
    schema: path.optional(),
    shown: "`$FREEHOLD_HOME/freehold.yaml` if present",
    description: "The freehold.yaml to read (server settings, providers, routes, privacy); a named file must exist.",
  }),
  host: setting({
    env: "FREEHOLD_HOST",
    file: "server.host",
    flag: "--host",
    schema: z.string().trim().min(1),
    default: "127.0.0.1",
    shown: "`127.0.0.1`",
    description:
      "Address `freehold serve` listens on and the CLI talks to, as Ollama's OLLAMA_HOST: host, host:port or a URL (loopback only by default).",
  }),
  port: setting({
    env: "FREEHOLD_PORT",
    file: "server.port",
    flag: "--port",
    schema: integer(0, 65535),
    default: 11435,
    shown: "`11435`",
    description: "Port `freehold serve` listens on.",
  }),
  threads: setting({
    env: "FREEHOLD_THREADS",
    file: "server.threads",
    flag: "--threads",
    schema: integer(0, 1024),
    default: 0,
    shown: "`0` (automatic)",
    description: "CPU threads per model runner; 0 picks per model (docs/threads.md).",
  }),
  contextSize: setting({
    env: "FREEHOLD_CONTEXT_SIZE",
    file: "server.context_size",
    flag: "--context-size",
    schema: integer(64, 1 << 22),
    default: 8192,
    shown: "`8192`",
    description: "Context size (tokens) per loaded model, capped by what the model was trained on.",
  }),
  keepAliveSeconds: setting({
    env: "FREEHOLD_KEEP_ALIVE",
    file: "server.keep_alive",
    flag: "--keep-alive",
    schema: keepAlive,
    default: 300,
    shown: "`5m`",
    description: "How long an idle model stays loaded: seconds or a duration (90s, 5m, 1h30m); -1 keeps it loaded.",
  }),
  drainTimeoutSeconds: setting({
    env: "FREEHOLD_DRAIN_TIMEOUT",
    file: "server.drain_timeout",
    flag: "--drain-timeout",
    schema: numeric(z.number().min(0).max(3600)),
    default: 10,
    shown: "`10`",
    description: "Seconds in-flight answers may finish on shutdown (SIGTERM, SIGINT); 0 aborts them at once.",
  }),
  parallel: setting({
    env: "FREEHOLD_PARALLEL",
    file: "server.parallel",
    flag: "--parallel",
    schema: integer(1, 64),
    default: 4,
    shown: "`4`",
    description: "Requests one loaded model answers at once (sequences decoded in shared batches).",
  }),
  maxQueue: setting({
    env: "FREEHOLD_MAX_QUEUE",
    file: "server.max_queue",
    flag: "--max-queue",
    schema: integer(0, 100_000),
    default: 64,
    shown: "`64`",
    description: "Requests that may wait per model when all its slots are busy; past it, 503 with Retry-After.",
  }),
  queueTimeoutSeconds: setting({
    env: "FREEHOLD_QUEUE_TIMEOUT",
    file: "server.queue_timeout",
    schema: numeric(z.number().min(0.001).max(86_400)),
    default: 120,
    shown: "`120`",
    description: "Seconds a request may wait for a slot before a 503.",
  }),
  memoryBudget: setting({
    env: "FREEHOLD_MEMORY_BUDGET",
    file: "server.memory_budget",
    schema: byteSize,
    default: 0,
    shown: "90% of RAM",
    description: "Memory all loaded models may use together: bytes, or like 8GiB / 512MB (0: 90% of the machine's).",
  }),
  gpuLayers: setting({
    env: "FREEHOLD_GPU_LAYERS",
    file: "server.gpu_layers",
    schema: z.union([choice(["auto", "max"]), integer(0, 10_000)], {
      error: "must be auto, max or a number of layers (0 = CPU only)",
    }) as unknown as z.ZodType<"auto" | "max" | number, string | number>,
    default: "auto",
    shown: "`auto`",
    description: "Layers to offload to a GPU when present: auto (as many as fit), max, or a number (0 = CPU only).",
  }),
  engine: setting({
    env: "FREEHOLD_ENGINE",
    file: "server.engine",
    schema: choice(["auto", "node-llama-cpp", "llama-server"]),
    default: "auto",
    shown: "`auto`",
    description:
      "Which engine runs local models: auto (node-llama-cpp, and llama-server for models with a vision projector), node-llama-cpp or llama-server (docs/models.md).",
  }),
  llamaServer: setting({
    env: "FREEHOLD_LLAMA_SERVER",
    file: "server.llama_server",
    schema: path.optional(),
    shown: "the `freehold engine build` cache",
    description: "Path to a llama-server binary for the llama-server engine.",
  }),
  kvCacheType: setting({
    env: "FREEHOLD_KV_CACHE_TYPE",
    file: "server.kv_cache_type",
    schema: choice(kvCacheTypes),
    default: "f16",
    shown: "`f16`",
    description:
      "KV cache element type, as Ollama's OLLAMA_KV_CACHE_TYPE: f16, q8_0 (about half the memory) or q4_0 (about a quarter); a profile may set its own.",
  }),
  flashAttention: setting({
    env: "FREEHOLD_FLASH_ATTENTION",
    file: "server.flash_attention",
    // YAML writers may spell it true/false.
    schema: z.preprocess(
      (value) => (value === true ? "on" : value === false ? "off" : value),
      choice(flashAttentionModes),
    ) as unknown as z.ZodType<(typeof flashAttentionModes)[number], string | boolean>,
    default: "auto",
    shown: "`auto`",
    description: "Flash attention: auto (llama.cpp decides), on or off; a quantized KV cache needs auto or on.",
  }),
  allowedHosts: setting({
    env: "FREEHOLD_ALLOWED_HOSTS",
    file: "server.allowed_hosts",
    flag: "--allowed-hosts",
    schema: list(z.string().min(1)),
    default: [],
    shown: "none",
    description: "Extra Host header names to accept (DNS-rebinding defence), comma-separated; * accepts any.",
  }),
  origins: setting({
    env: "FREEHOLD_ORIGINS",
    file: "server.origins",
    schema: list(origin),
    default: [],
    shown: "none",
    description:
      "Web origins (scheme://host[:port], or a prefix ending in *) whose pages may call the API beyond loopback ones, comma-separated; * allows any (unsafe on a keyless server).",
  }),
  maxBodyBytes: setting({
    env: "FREEHOLD_MAX_BODY_BYTES",
    file: "server.max_body_bytes",
    schema: integer(1024, 1 << 30),
    default: 8 * 1024 * 1024,
    shown: "`8388608` (8 MiB)",
    description: "Largest request body accepted, in bytes.",
  }),
  logLevel: setting({
    env: "FREEHOLD_LOG_LEVEL",
    file: "server.log_level",
    schema: choice(["fatal", "error", "warn", "info", "debug", "trace", "silent"]),
    default: "info",
    shown: "`info`",
    description: "Log level: fatal, error, warn, info, debug, trace or silent.",
  }),
  imageFetch: setting({
    env: "FREEHOLD_IMAGE_FETCH",
    file: "images.fetch",
    schema: list(
      z
        .string()
        .regex(IMAGE_HOST_ENTRY, "each image host is host, *.domain or *, optionally with :port")
        .refine(
          (entry) => {
            const port = IMAGE_HOST_ENTRY.exec(entry)?.[2];
            return port === undefined || (Number(port) >= 1 && Number(port) <= 65535);
          },
          { message: "a port is 1 to 65535" },
        ),
    ),
    default: [],
    shown: "none (image URLs refused)",
    description:
      "Hosts whose http(s) image URLs freehold fetches for vision requests, comma-separated: host, *.domain (subdomains) or * (any public host), optionally :port (else 80/443). Private and loopback addresses are never fetched (docs/security.md).",
  }),
  imageFetchTimeoutSeconds: setting({
    env: "FREEHOLD_IMAGE_FETCH_TIMEOUT",
    file: "images.fetch_timeout",
    schema: numeric(z.number().min(0.1).max(120)),
    default: 5,
    shown: "`5`",
    description: "Seconds one image fetch (redirects, headers and body) may take before it is a 400.",
  }),
  offline: setting({
    env: "FREEHOLD_OFFLINE",
    file: "offline",
    flag: "--offline",
    schema: yesNo,
    default: false,
    shown: "off",
    description: "1: nothing leaves the machine (pulls and remote providers refused), even with providers configured.",
  }),
  databaseUrl: setting({
    env: "FREEHOLD_DATABASE_URL",
    file: "database.url",
    schema: z
      .string()
      .regex(/^postgres(ql)?:\/\/./i, "must be a postgres:// or postgresql:// URL (unset it for the SQLite file)")
      .optional(),
    shown: "SQLite in `$FREEHOLD_HOME`",
    description:
      "postgres://user:password@host:5432/db keeps keys, limits, ledger and audit in PostgreSQL, shared by replicas (docs/deploy.md).",
  }),
  auditKey: setting({
    env: "FREEHOLD_AUDIT_KEY",
    // Not checked here: an invalid value would be quoted in the error; src/control/auditKey.ts says what is wrong.
    secret: true,
    schema: z.string().optional(),
    shown: "none",
    description:
      "Secret (at least 32 characters) that keys the audit trail's hash chain, instead of the key file. Never logged.",
  }),
  auditKeyFile: setting({
    env: "FREEHOLD_AUDIT_KEY_FILE",
    schema: path,
    default: (home: string) => join(home, "audit.key"),
    shown: "`$FREEHOLD_HOME/audit.key`",
    description:
      "File holding the audit trail's key (created 0600 on first use); its witness audit.key.head is kept beside it.",
  }),
  apiKey: setting({
    env: "FREEHOLD_API_KEY",
    flag: "--api-key",
    secret: true,
    schema: z.string().min(1).optional(),
    shown: "none",
    description:
      "The key the CLI sends to a running server (as --api-key) and the key `freehold mcp` acts as; needed once keys exist.",
  }),
  hfEndpoint: setting({
    env: "HF_ENDPOINT",
    schema: z.url({ protocol: /^https?$/ }),
    default: "https://huggingface.co",
    shown: "`https://huggingface.co`",
    description: "Hugging Face hub that `freehold pull` uses (a mirror, or a test server).",
  }),
  hfToken: setting({
    env: "HF_TOKEN",
    secret: true,
    schema: z.string().min(1).optional(),
    shown: "none",
    description: "Hugging Face access token for gated or private repositories; sent only to HF_ENDPOINT's own host.",
  }),
};

type Table = typeof settings;
export type SettingName = keyof Table;
type Output<K extends SettingName> = z.output<Table[K]["schema"]>;
type Input<K extends SettingName> = z.input<Table[K]["schema"]>;
type OptionalName = { [K in SettingName]: undefined extends Output<K> ? K : never }[SettingName];

/** The validated settings, passed down explicitly (nothing below src/config reads the environment). */
export type Config = Readonly<
  { [K in Exclude<SettingName, OptionalName>]: Output<K> } & { [K in OptionalName]?: Exclude<Output<K>, undefined> }
>;

/** What a flag or a library caller may set: any setting, in any form its schema reads (text or value). */
export type ConfigOverrides = { [K in SettingName]?: Exclude<Input<K>, undefined> };

export const settingNames = Object.keys(settings) as SettingName[];

/** Environment variable → what it means, for `serve --help` and the README test. */
export const environmentKeys: Readonly<Record<string, string>> = Object.fromEntries(
  settingNames.map((name) => [settings[name].env, settings[name].description]),
);
