import { z } from "zod";
import { checkOwnerPattern } from "../core/patternSafety.js";
import { type Setting, settingNames, settings } from "./settings.js";

type Table = typeof settings;

/**
 * `freehold.yaml`: server settings, providers, routes, privacy rules and per-key policies in one file. Strings may
 * reference the environment as `${NAME}` (or `${NAME:-default}`), so secrets stay out of the file. Validated at
 * start; every error names the file, the line and the field.
 */

const seconds = z.number().positive().max(86_400);
const policy = z.enum(["local-only", "redact", "block", "allow"]);

export const targetSchema = z.strictObject({
  provider: z.string().min(1),
  model: z.string().min(1),
  /** Share of traffic among the targets of one `balance` group. */
  weight: z.number().positive().max(1000).default(1),
  /** Seconds to wait for the first token before giving up on this target. */
  timeout: seconds.optional(),
});

const tierSchema = z.union([targetSchema, z.strictObject({ balance: z.array(targetSchema).min(1) })]);

export const providerSchema = z.strictObject({
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

export const routeSchema = z.strictObject({
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

/**
 * The `server:` section, `offline` and `database.url`: the settings table's rows that have a file key, with the
 * table's own schemas (so the file, the environment and the flags accept the same values).
 */
function sectionOf(prefix: string): Record<string, z.ZodOptional<z.ZodType>> {
  const shape: Record<string, z.ZodOptional<z.ZodType>> = {};
  for (const name of settingNames) {
    const key: string | undefined = (settings[name] as Setting).file;
    if (key?.startsWith(prefix) && !key.slice(prefix.length).includes("."))
      shape[key.slice(prefix.length)] = (settings[name] as Setting).schema.optional();
  }
  return shape;
}

type FileSection<Prefix extends string> = {
  [K in keyof Table as Table[K] extends { file: `${Prefix}${infer Key}` } ? Key : never]?: z.output<Table[K]["schema"]>;
};

export const serverSchema = z.strictObject(sectionOf("server.")) as unknown as z.ZodType<FileSection<"server.">> & {
  shape: Record<string, z.ZodType>;
};
const databaseSchema = z.strictObject(sectionOf("database.")) as unknown as z.ZodType<FileSection<"database.">>;
const imagesSchema = z.strictObject(sectionOf("images.")) as unknown as z.ZodType<FileSection<"images.">>;
const topLevel = sectionOf("") as { offline: z.ZodOptional<z.ZodType<boolean>> };

export const fileConfigSchema = z
  .strictObject({
    server: serverSchema.default({}),
    /** The control plane's database (FREEHOLD_DATABASE_URL beats it); absent: the SQLite file in FREEHOLD_HOME. */
    database: databaseSchema.default({}),
    /** Image URLs: the hosts freehold fetches them from (FREEHOLD_IMAGE_FETCH beats it), and the time a fetch may take. */
    images: imagesSchema.default({}),
    /** Forbid every request from leaving the machine, even with providers configured. */
    offline: topLevel.offline,
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
