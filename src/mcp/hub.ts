import { type FileConfig, type McpServerConfig, mcpServerIsRemote } from "../config/fileConfig.js";
import type { AuditSink } from "../core/context.js";
import { isFreeholdError, NotFoundError, PermissionError } from "../core/errors.js";
import type { RequestMeter } from "../core/metering.js";
import type { HostedTool, HostedToolResult, ToolAccess, ToolHost } from "../core/toolHost.js";
import { McpConnection } from "./connection.js";

/** Where MCP calls are counted (`/metrics`); the control plane's Metrics implements it. */
export interface McpCallObserver {
  observeMcpCall(observation: { server: string; tool: string; status: string; durationMs: number }): void;
}

export interface McpHubOptions {
  servers: Record<string, McpServerConfig>;
  /** The owner's routes (their `mcp:` servers and their targets) and providers, to know which routes stay local. */
  routes?: FileConfig["routes"];
  providers?: FileConfig["providers"];
  /** Per key name: `local_only` from freehold.yaml. */
  keys?: FileConfig["keys"];
  offline?: boolean;
  audit?: AuditSink;
  meter?: RequestMeter;
  metrics?: McpCallObserver;
  /** freehold's version, announced to servers. */
  version?: string;
}

/**
 * The configured MCP servers under the owner's rules: which requests may reach which server, and a record of every
 * call (audit trail `mcp.call`, `/metrics`, the ledger and the key's rate limits).
 */
export class McpHub implements ToolHost {
  private readonly connections = new Map<string, McpConnection>();
  private callCount = 0;

  constructor(private options: McpHubOptions) {
    for (const [name, config] of Object.entries(options.servers))
      this.connections.set(name, new McpConnection(name, config, options.version));
  }

  static fromFile(
    file: FileConfig | null,
    offline: boolean,
    deps: Pick<McpHubOptions, "audit" | "meter" | "metrics" | "version">,
  ) {
    return new McpHub({
      servers: file?.mcp_servers ?? {},
      routes: file?.routes ?? {},
      providers: file?.providers ?? {},
      keys: file?.keys ?? {},
      offline,
      ...deps,
    });
  }

  /**
   * SIGHUP: the new file's routes, providers, key rules and offline flag apply at once (so a route that no longer
   * attaches a server stops using it); servers themselves are kept as started (a restart applies changes to them).
   */
  reloadRules(file: FileConfig | null, offline: boolean): void {
    this.options = {
      ...this.options,
      routes: file?.routes ?? {},
      providers: file?.providers ?? {},
      keys: file?.keys ?? {},
      offline,
    };
  }

  has(server: string): boolean {
    return this.connections.has(server);
  }

  /** The connection behind a name (tests read its pid and restart count). */
  connection(server: string): McpConnection {
    const connection = this.connections.get(server);
    if (!connection)
      throw new NotFoundError(
        `No MCP server named ${JSON.stringify(server)} is configured (known: ${[...this.connections.keys()].join(", ") || "none; add one under mcp_servers in freehold.yaml"})`,
        "mcp_server_not_found",
      );
    return connection;
  }

  attached(model: string): string[] {
    return this.options.routes?.[model]?.mcp ?? [];
  }

  isRemote(server: string): boolean {
    return mcpServerIsRemote(this.options.servers[server]!);
  }

  /** Why this request may not reach a remote server, or undefined when it may. */
  private remoteRefusal(access: ToolAccess): string | undefined {
    const key = access.context.key;
    if (this.options.offline) return "freehold runs offline: nothing may leave the machine";
    if (key && (key.localOnly || this.options.keys?.[key.name]?.local_only))
      return `the API key ${key.name} is local-only`;
    const route = access.model !== undefined ? this.options.routes?.[access.model] : undefined;
    if (route && this.routeIsLocal(route)) return `the route ${access.model} has only local targets (it is local-only)`;
    return undefined;
  }

  private routeIsLocal(route: FileConfig["routes"][string]): boolean {
    const targets = route.targets.flatMap((tier) => ("balance" in tier ? tier.balance : [tier]));
    return targets.every(
      (target) => target.provider === "local" || this.options.providers?.[target.provider]?.kind === "local",
    );
  }

  private authorize(server: string, access: ToolAccess): McpConnection {
    const connection = this.connection(server);
    if (!this.isRemote(server)) return connection;
    const refusal = this.remoteRefusal(access);
    if (refusal)
      throw new PermissionError(
        `The MCP server ${server} is remote and ${refusal}, so nothing was sent to it. Use a local MCP server, or a key and route that may leave the machine.`,
        "mcp_remote_refused",
      );
    return connection;
  }

  async listTools(server: string, access: ToolAccess, signal?: AbortSignal): Promise<HostedTool[]> {
    return this.authorize(server, access).listTools(signal);
  }

  async callTool(
    server: string,
    tool: string,
    args: Record<string, unknown>,
    access: ToolAccess,
    signal?: AbortSignal,
  ): Promise<HostedToolResult> {
    const { context } = access;
    const started = performance.now();
    // Each call is its own ledger row (request id suffixed), counted against the key's per-minute requests.
    const callContext = { ...context, requestId: `${context.requestId}.mcp${++this.callCount}` };
    let status = "refused";
    let result: HostedToolResult | undefined;
    let failure: unknown;
    const admission = (() => {
      try {
        const connection = this.authorize(server, access);
        const admitted = this.options.meter?.admit(
          { kind: "mcp-call", promptTokenBound: 0, maxTokens: 0 },
          callContext,
          { provider: `mcp:${server}`, model: tool, remote: false },
        );
        return { connection, admitted };
      } catch (error) {
        failure = error;
        return undefined;
      }
    })();
    try {
      if (!admission) throw failure;
      result = await admission.connection.callTool(tool, args, signal);
      status = result.isError ? "tool_error" : "ok";
      return result;
    } catch (error) {
      if (admission) status = signal?.aborted ? "cancelled" : "error";
      failure = error;
      throw error;
    } finally {
      const durationMs = performance.now() - started;
      const httpStatus =
        status === "ok" || status === "tool_error" ? 200 : isFreeholdError(failure) ? failure.status : 500;
      admission?.admitted?.settle({
        promptTokens: 0,
        completionTokens: 0,
        cachedTokens: 0,
        timeToFirstTokenMs: null,
        status: httpStatus,
        ...(isFreeholdError(failure) ? { errorCode: failure.code } : {}),
      });
      this.options.metrics?.observeMcpCall({ server, tool, status, durationMs });
      this.record(access, server, tool, status, durationMs, args, result, failure);
    }
  }

  private record(
    access: ToolAccess,
    server: string,
    tool: string,
    status: string,
    durationMs: number,
    args: Record<string, unknown>,
    result: HostedToolResult | undefined,
    failure: unknown,
  ): void {
    const key = access.context.key;
    // Arguments and results are content: kept only for keys that store content, as the ledger keeps requests.
    const content = key?.storeContent ? { arguments: args, ...(result ? { result: result.output } : {}) } : {};
    const event = {
      actor: key ? `key:${key.name}` : "anonymous",
      action: "mcp.call",
      target: `${server}/${tool}`,
      requestId: access.context.requestId,
      detail: {
        server,
        tool,
        key: key?.name ?? null,
        remote: this.options.servers[server] ? this.isRemote(server) : null,
        durationMs: Math.round(durationMs),
        status,
        ...(failure ? { error: failure instanceof Error ? failure.message : String(failure) } : {}),
        ...content,
      },
    };
    if (this.options.audit?.recordSoon) this.options.audit.recordSoon(event);
    else this.options.audit?.record(event);
  }

  async close(): Promise<void> {
    await Promise.all([...this.connections.values()].map((connection) => connection.close()));
  }
}
