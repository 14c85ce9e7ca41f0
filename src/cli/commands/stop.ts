import type { Command } from "commander";
import { fetchServer, print, serverFailure, serverTarget, withServerFlags } from "../context.js";

export function registerStop(program: Command): void {
  withServerFlags(
    program
      .command("stop")
      .description("unload a model from a running `freehold serve` (after its running requests finish)")
      .argument("<model>", "model name"),
  )
    .option("--port <port>", "server port (default from config; or write it in --host)")
    .action(async (model: string, options: { host?: string; port?: string; apiKey?: string }, command: Command) => {
      const target = serverTarget(command, options);
      const response = await fetchServer(target, "/freehold/unload", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model }),
      });
      if (!response.ok) throw await serverFailure(response, target);
      const body = (await response.json()) as { unloaded?: boolean };
      print(body.unloaded ? `unloaded ${model}` : `${model} was not loaded`);
    });
}
