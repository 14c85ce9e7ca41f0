import type { Command } from "commander";
import {
  buildLlamaServer,
  engineStatus,
  enginesDirectory,
  type GpuKind,
  locateLlamaServer,
} from "../../engine/engines.js";
import { commandConfig, print } from "../context.js";
import { UsageError } from "../errors.js";

export function registerEngine(program: Command): void {
  const engine = program
    .command("engine")
    .description("the engines that run local models (node-llama-cpp, llama-server)");
  engine
    .command("status")
    .description("which engines are available here, and why not")
    .option("--json", "machine-readable output")
    .action((options: { json?: boolean }, command: Command) => {
      const config = commandConfig(command);
      const location = locateLlamaServer(config.llamaServer, [enginesDirectory(config.home)]);
      const engines = engineStatus(location);
      if (options.json) {
        print(JSON.stringify({ setting: config.engine, engines }, null, 2));
        return;
      }
      print(`engine setting: ${config.engine} (FREEHOLD_ENGINE, freehold.yaml server.engine, or a profile's engine)`);
      for (const entry of engines)
        print(`${entry.name.padEnd(15)} ${entry.available ? "available  " : "unavailable"} ${entry.detail}`);
    });
  engine
    .command("build")
    .description(
      "build llama-server from the llama.cpp source node-llama-cpp ships (needs cmake and a C++ compiler); cached under FREEHOLD_HOME/engines",
    )
    .option("--gpu <kind>", "build for a GPU: cuda or vulkan (default: CPU with this machine's instructions)")
    .option("--jobs <n>", "parallel compile jobs (default: the number of cores)")
    .action(async (options: { gpu?: string; jobs?: string }, command: Command) => {
      if (options.gpu !== undefined && options.gpu !== "cuda" && options.gpu !== "vulkan")
        throw new UsageError(`--gpu must be cuda or vulkan, not "${options.gpu}"`);
      if (options.jobs !== undefined && !/^[1-9]\d{0,3}$/.test(options.jobs))
        throw new UsageError(`--jobs must be a whole number from 1, not "${options.jobs}"`);
      const config = commandConfig(command);
      let last = "";
      const result = await buildLlamaServer({
        home: config.home,
        ...(options.gpu ? { gpu: options.gpu as GpuKind } : {}),
        ...(options.jobs ? { jobs: Number(options.jobs) } : {}),
        onLine: (line) => {
          // Ninja's "[12/345] Building ..." lines are the progress; everything else only when it looks like news.
          const step = /^\[(\d+)\/(\d+)\]/.exec(line);
          const shown = step
            ? `building: ${step[1]}/${step[2]}`
            : /error|warning: unused|unpacking|^-- (Found|Configuring done|Build files)/i.test(line)
              ? line
              : "";
          if (shown && shown !== last) {
            process.stderr.write(`${shown}\n`);
            last = shown;
          }
        },
      });
      print(`${result.cached ? "already built" : "built"}: ${result.path} (llama.cpp ${result.commit.slice(0, 12)})`);
      if (!config.llamaServer) print("freehold finds it there; FREEHOLD_ENGINE=llama-server uses it for every model.");
    });
}
