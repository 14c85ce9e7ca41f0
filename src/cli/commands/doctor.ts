import type { Command } from "commander";
import type { FileConfig } from "../../config/fileConfig.js";
import { mcpDestinations } from "../../mcp/egress.js";
import { egressDestinations } from "../../routing/table.js";
import { commandSettings, print } from "../context.js";

export function registerDoctor(program: Command): void {
  program
    .command("doctor")
    .description("check this installation")
    .option("--egress", "list every network destination the configuration could contact, and why")
    .option("--offline", "as `serve --offline` would run")
    .action((options: { egress?: boolean; offline?: boolean }, command: Command) => {
      const settings = commandSettings(command, {}, options.offline ? true : undefined);
      if (!options.egress) {
        print(`config: ${settings.filePath ?? "none (everything local)"}; home: ${settings.config.home}`);
        print("run `freehold doctor --egress` to list where data could go");
        return;
      }
      const destinations = egressDestinations(settings.file);
      print(`config: ${settings.filePath ?? "none"}`);
      print(`listening: ${settings.config.host}:${settings.config.port} (inbound only)`);
      if (settings.offline) {
        print("offline: freehold contacts no other machine; requests that would leave fail instead");
        for (const d of destinations) print(`  configured but forbidden: ${d.origin} (provider ${d.provider})`);
      } else if (destinations.length === 0) {
        print("outbound: none. No provider is configured, so nothing ever leaves this machine.");
      } else {
        print("outbound destinations:");
        for (const d of destinations)
          print(
            `  ${d.origin}  provider ${d.provider} (${d.kind}); used by route${d.routes.length === 1 ? "" : "s"} ${d.routes.join(", ") || "(none)"}${d.healthChecks ? "; health probes" : ""}`,
          );
      }
      printMcpEgress(settings.file, settings.offline);
      print("model pulls: none (freehold has no hub client; `import` reads local files)");
      print("telemetry, update checks, price-list fetches: none (freehold has none of them)");
    });
}

/** MCP servers: a tool call sends the model's arguments to the server, so a remote one is a destination too. */
function printMcpEgress(file: FileConfig | null, offline: boolean): void {
  const servers = mcpDestinations(file);
  if (servers.length === 0) return;
  const remote = servers.filter((server) => server.remote);
  if (remote.length === 0) print("MCP servers: all local (tool calls stay on this machine)");
  else {
    print(
      offline
        ? "remote MCP servers (configured but forbidden offline):"
        : "remote MCP servers (tool calls send arguments there):",
    );
    for (const server of remote)
      print(
        `  ${server.destination}  mcp server ${server.server}; attached to route${server.routes.length === 1 ? "" : "s"} ${server.routes.join(", ") || "(none; Responses requests may name it)"}`,
      );
  }
  for (const server of servers.filter((s) => !s.remote))
    print(`  local MCP server ${server.server}: ${server.destination}`);
}
