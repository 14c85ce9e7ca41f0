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

/** Why the caller may or may not use a server: the rules that refuse remote servers. */
export interface ToolAccess {
  context: RequestContext;
  /** The model (route) name the request asked for: a route with only local targets is local-only. */
  model?: string;
}

export interface ToolHost {
  /** Whether a server of this name is configured. */
  has(server: string): boolean;
  /** The servers the owner attached to a model name (a route's `mcp:`); empty when none. */
  attached(model: string): string[];
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
