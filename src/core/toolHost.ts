import type { RequestContext } from "./context.js";

/**
 * Tools that run on this side of the API (MCP servers the owner configured), as the gateway sees them. The
 * implementation (src/mcp) applies the owner's rules on every call: a local-only key, route or an offline server
 * never reaches a remote server; every call is metered, audited and counted.
 */

/** One tool a server offers, as its `tools/list` describes it. */
export interface HostedTool {
  server: string;
  name: string;
  description?: string;
  /** A JSON schema for the arguments (object). */
  inputSchema: Record<string, unknown>;
  /** The server's own hint that the tool changes nothing (`annotations.readOnlyHint`). */
  readOnly: boolean;
}

/** What a call returned: the text the model reads next, and whether the server called it an error. */
export interface HostedToolResult {
  output: string;
  isError: boolean;
}

/** A server the client named by URL for one request (Responses' `server_url`), allowed only by the owner's switch. */
export interface ClientServer {
  url: string;
  /** The client's own headers for it (`headers`, and `authorization` as a bearer token). */
  headers: Record<string, string>;
}

/** Why the caller may or may not use a server: the rules that refuse remote servers. */
export interface ToolAccess {
  context: RequestContext;
  /** The model (route) name the request asked for: a route with only local targets is local-only. */
  model?: string;
  /** Servers this request named by URL, by their `server_label` (always remote; closed by `release`). */
  clientServers?: Record<string, ClientServer>;
}

export interface ToolHost {
  /** Whether a server of this name is configured. */
  has(server: string): boolean;
  /** Whether `attached` may name servers for this model name (without looking anything up): the fast path. */
  mayAttach(model: string): boolean;
  /** The servers the owner attached to a model name (a route's or a profile's `mcp:`); empty when none. */
  attached(model: string): Promise<string[]>;
  /** Whether the owner lets clients name servers by URL (`mcp_allow_client_servers`). */
  allowsClientServers(): boolean;
  /** Ends what one request opened (its client-chosen servers' connections). */
  release(access: ToolAccess): Promise<void>;
  /** The server's tools (cached; refreshed when it says its list changed). Throws PermissionError when refused. */
  listTools(server: string, access: ToolAccess, signal?: AbortSignal): Promise<HostedTool[]>;
  /** Runs one call. A tool's own failure is a result with isError; refusals and limits throw typed errors. */
  callTool(
    server: string,
    tool: string,
    args: Record<string, unknown>,
    access: ToolAccess,
    signal?: AbortSignal,
  ): Promise<HostedToolResult>;
}
