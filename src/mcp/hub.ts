import { type FileConfig, type McpServerConfig, mcpServerIsRemote } from "../config/fileConfig.js";
import type { AuditSink } from "../core/context.js";
import { FreeholdError, isFreeholdError, NotFoundError, PermissionError } from "../core/errors.js";
import type { Admission, RequestMeter } from "../core/metering.js";
import type { ClientServer, HostedTool, HostedToolResult, ToolAccess, ToolHost } from "../core/toolHost.js";
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
  /** freehold.yaml's `mcp_allow_client_servers`: Responses requests may name servers by URL. */
  allowClientServers?: boolean;
  /** A profile's `mcp:` servers by model name (undefined: no such profile); the store answers it. */
  profileServers?: (model: string) => Promise<string[] | undefined>;
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
  /** Client-chosen servers (by label) of the requests running now, closed when each ends (`release`). */
  private readonly requestConnections = new WeakMap<ToolAccess, Map<string, McpConnection>>();
  private callCount = 0;

  constructor(private options: McpHubOptions) {
    for (const [name, config] of Object.entries(options.servers))
      this.connections.set(name, new McpConnection(name, config, options.version));
  }

  static fromFile(
    file: FileConfig | null,
    offline: boolean,
    deps: Pick<McpHubOptions, "audit" | "meter" | "metrics" | "version" | "profileServers">,
  ) {
    return new McpHub({
      servers: file?.mcp_servers ?? {},
      routes: file?.routes ?? {},
      providers: file?.providers ?? {},
      keys: file?.keys ?? {},
      offline,
      allowClientServers: file?.mcp_allow_client_servers ?? false,
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
      allowClientServers: file?.mcp_allow_client_servers ?? false,
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

  mayAttach(model: string): boolean {
    const route = this.options.routes?.[model];
    if (route) return (route.mcp?.length ?? 0) > 0;
    // Any other name may be a profile; with no servers configured no profile can attach one (checked at start).
    return this.options.profileServers !== undefined && this.connections.size > 0;
  }

  /** A route's `mcp:` (a route's name wins over a model's), else the profile's of that name. */
  async attached(model: string): Promise<string[]> {
    const route = this.options.routes?.[model];
    if (route) return route.mcp ?? [];
    if (!this.mayAttach(model)) return [];
    const servers = (await this.options.profileServers!(model)) ?? [];
    const missing = servers.find((server) => !this.connections.has(server));
    if (missing !== undefined)
      throw new FreeholdError(
        `The profile ${model} attaches the MCP server ${missing}, which this freehold was not started with (known: ${[...this.connections.keys()].join(", ")}); the owner adds it under mcp_servers in freehold.yaml and restarts, or creates the profile again without it`,
        { code: "mcp_server_not_configured", status: 500, type: "server_error", param: "model" },
      );
    return servers;
  }

  allowsClientServers(): boolean {
    return this.options.allowClientServers === true;
  }

  isRemote(server: string, access?: ToolAccess): boolean {
    // A server a client named by URL is remote wherever it is: the owner did not choose it.
    if (access?.clientServers?.[server]) return true;
    return mcpServerIsRemote(this.options.servers[server]!);
  }

  /** The client-chosen server behind a label, connected once per request. */
  private clientConnection(server: string, chosen: ClientServer, access: ToolAccess): McpConnection {
    if (!this.allowsClientServers())
      throw new PermissionError(
        `The MCP server ${server} was named by URL, and this server calls only the MCP servers its owner configured (mcp_allow_client_servers is off in freehold.yaml)`,
        "mcp_client_servers_off",
      );
    let open = this.requestConnections.get(access);
    if (!open) {
      open = new Map();
      this.requestConnections.set(access, open);
    }
    let connection = open.get(server);
    if (!connection) {
      const config = { url: chosen.url, headers: chosen.headers, remote: true, timeout: 30, max_result_bytes: 65_536 };
      connection = new McpConnection(server, config, this.options.version, true);
      open.set(server, connection);
    }
    return connection;
  }

  async release(access: ToolAccess): Promise<void> {
    const open = this.requestConnections.get(access);
    this.requestConnections.delete(access);
    await Promise.all([...(open?.values() ?? [])].map((connection) => connection.close()));
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
    const chosen = access.clientServers?.[server];
    // An unknown name is a 404 naming the known ones, before any rule is read.
    const configured = chosen ? undefined : this.connection(server);
    if (configured && !this.isRemote(server)) return configured;
    // Refused before anything is connected: not even a handshake reaches a server the rules keep us from.
    const refusal = this.remoteRefusal(access);
    if (refusal)
      throw new PermissionError(
        `The MCP server ${server} is remote and ${refusal}, so nothing was sent to it. Use a local MCP server, or a key and route that may leave the machine.`,
        "mcp_remote_refused",
      );
    return configured ?? this.clientConnection(server, chosen!, access);
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
    let admission: { connection: McpConnection; admitted: Admission | undefined } | undefined;
    const chosen = access.clientServers?.[server];
    // Only the owner's servers have a price; a client-chosen one is named by its host in the ledger.
    const price = chosen ? undefined : this.options.servers[server]?.price_per_call_usd;
    try {
      const connection = this.authorize(server, access);
      const admitted = await this.options.meter?.admit(
        { kind: "mcp-call", promptTokenBound: 0, maxTokens: 0, ...(price ? { priceUsd: price } : {}) },
        callContext,
        { provider: chosen ? `mcp-client:${new URL(chosen.url).host}` : `mcp:${server}`, model: tool, remote: false },
      );
      admission = { connection, admitted };
    } catch (error) {
      failure = error;
    }
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
      const settling = admission?.admitted?.settle({
        promptTokens: 0,
        completionTokens: 0,
        cachedTokens: 0,
        timeToFirstTokenMs: null,
        status: httpStatus,
        ...(isFreeholdError(failure) ? { errorCode: failure.code } : {}),
        // A call the server answered is charged (a tool's own error too); one that never ran is not.
        ...(price ? { costUsd: status === "ok" || status === "tool_error" ? price : 0 } : {}),
      });
      // Client-chosen labels are the client's words: one metrics series for all of them, not one per label.
      this.options.metrics?.observeMcpCall({ server: chosen ? "(client-chosen)" : server, tool, status, durationMs });
      this.record(access, server, tool, status, durationMs, args, result, failure);
      // A settlement that fails (the control plane's database gone) fails the call, but never hides its own error.
      if (failure === undefined) await settling;
      else await settling?.catch(() => {});
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
        remote: access.clientServers?.[server] || this.options.servers[server] ? this.isRemote(server, access) : null,
        ...(access.clientServers?.[server]
          ? { client_chosen: true, url: new URL(access.clientServers[server].url).origin }
          : {}),
        durationMs: Math.round(durationMs),
        status,
        ...(failure ? { error: failure instanceof Error ? failure.message : String(failure) } : {}),
        ...content,
      },
    };
    if (this.options.audit?.recordSoon) this.options.audit.recordSoon(event);
    else this.options.audit?.record(event);
  }

  /** The servers configured now (freehold.yaml's mcp_servers as started): what a profile's `mcp:` may name. */
  configured(): string[] {
    return [...this.connections.keys()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.connections.values()].map((connection) => connection.close()));
  }
}
