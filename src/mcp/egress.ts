import { type FileConfig, mcpServerIsRemote } from "../config/fileConfig.js";

export interface McpDestination {
  server: string;
  /** The URL's origin, or the program a stdio server runs. */
  destination: string;
  remote: boolean;
  /** Routes that attach it (`mcp:`); any Responses request may also name it. */
  routes: string[];
}

/** The MCP servers freehold.yaml configures, and where each one's calls go (for `doctor --egress`). */
export function mcpDestinations(file: FileConfig | null): McpDestination[] {
  return Object.entries(file?.mcp_servers ?? {}).map(([server, config]) => ({
    server,
    destination: config.url ? new URL(config.url).origin : `stdio: ${config.command!.join(" ")}`,
    remote: mcpServerIsRemote(config),
    routes: Object.entries(file?.routes ?? {})
      .filter(([, route]) => route.mcp?.includes(server))
      .map(([name]) => name),
  }));
}
