import type { Command } from "commander";
import { commandConfig, print, serverUrl } from "../context.js";

export function registerStop(program: Command): void {
  program
    .command("stop")
    .description("unload a model from a running `freehold serve` (after its running requests finish)")
    .argument("<model>", "model name")
    .option("--host <host>", "server address (default from config)")
    .option("--port <port>", "server port (default from config)")
    .action(async (model: string, options: { host?: string; port?: string }, command: Command) => {
      const config = commandConfig(command, {
        ...(options.host ? { host: options.host } : {}),
        ...(options.port ? { port: options.port } : {}),
      });
      const url = `${serverUrl(config)}/freehold/unload`;
      let response: Response;
      try {
        response = await fetch(url, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model }),
          signal: AbortSignal.timeout(30_000),
        });
      } catch {
        throw new Error(`no freehold server answered at ${url}; start one with \`freehold serve\``);
      }
      const body = (await response.json()) as { unloaded?: boolean; error?: { message: string } };
      if (!response.ok) throw new Error(body.error?.message ?? `the server answered ${response.status}`);
      print(body.unloaded ? `unloaded ${model}` : `${model} was not loaded`);
    });
}
