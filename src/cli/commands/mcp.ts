import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { Command } from "commander";
import { AuthenticationError } from "../../core/errors.js";
import { Freehold } from "../../library.js";
import { commandSettings } from "../context.js";
import { createModelServer } from "../mcpServer.js";

export function registerMcp(program: Command): void {
  program
    .command("mcp")
    .description(
      "serve this machine's models to MCP clients over stdio (tools: ask, embed, list_models); acts as $FREEHOLD_API_KEY",
    )
    .action(async (_options: unknown, command: Command) => {
      const settings = commandSettings(command);
      // Offline: the point is to hand private work to a local model, so no route may send it elsewhere.
      const freehold = await Freehold.open({
        ...settings.config,
        ...(settings.filePath ? { configPath: settings.filePath } : {}),
        allowedHosts: [...settings.config.allowedHosts],
        offline: true,
        // stdout carries the protocol; the log goes to stderr.
        logOutput: process.stderr,
      });
      let key: Awaited<ReturnType<Freehold["control"]["authenticate"]>>;
      try {
        if (!settings.config.apiKey && (await freehold.control.requiresKeys()))
          throw new AuthenticationError(
            "freehold mcp needs an API key once keys exist: set FREEHOLD_API_KEY=fh-… in the MCP client's environment for this server (create one with `freehold keys create --name NAME`)",
            "missing_api_key",
          );
        key = await freehold.control.authenticate(settings.config.apiKey);
      } catch (error) {
        await freehold.close();
        throw error;
      }
      const server = createModelServer(freehold.gateway, key);
      const transport = new StdioServerTransport();
      const closed = new Promise<void>((resolve) => {
        transport.onclose = resolve;
        process.stdin.once("end", resolve);
      });
      await server.connect(transport);
      process.stderr.write(`freehold mcp: serving local models over stdio${key ? ` as key ${key.name}` : ""}\n`);
      await closed;
      await server.close().catch(() => {});
      await freehold.close();
    });
}
