import { resolve } from "node:path";
import type { Command } from "commander";
import type { Settings } from "../../config/fileConfig.js";
import { Freehold } from "../../library.js";
import { startServer } from "../../server.js";
import { DEMO_MODEL, ensureDemoModel } from "../../storeAdapters.js";
import { commandSettings, print } from "../context.js";
import { portInUseMessage } from "../portInUse.js";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the API server (OpenAI-compatible) on this machine")
    .option("--host <host>", "address to listen on (default 127.0.0.1: this machine only)")
    .option("--port <port>", "port to listen on (default 11435)")
    .option("--threads <n>", "CPU threads per model (0 = choose per model)")
    .option("--context-size <tokens>", "context size per model")
    .option("--keep-alive <seconds>", "how long an idle model stays loaded (-1 = forever)")
    .option("--drain-timeout <seconds>", "on shutdown, how long in-flight answers may finish (0 = stop now)")
    .option("--allowed-hosts <names>", "extra Host header names to accept, comma-separated")
    .option("--parallel <n>", "requests each model answers at once (default 4)")
    .option("--max-queue <n>", "requests that may wait per model before 503 (default 64)")
    .option("--no-demo", "do not install the demo model when the store is empty")
    .option(
      "--insecure-no-auth",
      "allow listening beyond loopback with no API keys (anyone who can reach it may use it)",
    )
    .option("--offline", "nothing leaves this machine, even with remote providers configured")
    .option("--locked", "serve only the models ./freehold.lock pins, as it pins them (others are refused)")
    .action(async (options: Record<string, string | boolean | undefined>, command: Command) => {
      const overrides = {
        ...(options.host ? { host: String(options.host) } : {}),
        ...(options.port !== undefined ? { port: String(options.port) } : {}),
        ...(options.threads !== undefined ? { threads: String(options.threads) } : {}),
        ...(options.contextSize !== undefined ? { contextSize: String(options.contextSize) } : {}),
        ...(options.keepAlive !== undefined ? { keepAliveSeconds: String(options.keepAlive) } : {}),
        ...(options.drainTimeout !== undefined ? { drainTimeoutSeconds: String(options.drainTimeout) } : {}),
        ...(options.parallel !== undefined ? { parallel: String(options.parallel) } : {}),
        ...(options.maxQueue !== undefined ? { maxQueue: String(options.maxQueue) } : {}),
        ...(options.allowedHosts
          ? {
              allowedHosts: String(options.allowedHosts)
                .split(",")
                .map((h) => h.trim())
                .filter(Boolean),
            }
          : {}),
      };
      const offline = options.offline === true ? true : undefined;
      const settings = commandSettings(command, overrides, offline);
      const config = settings.config;
      const freehold = await Freehold.open({
        ...config,
        ...(settings.filePath ? { configPath: settings.filePath } : {}),
        ...(offline !== undefined ? { offline } : {}),
        ...(options.locked ? { lockfile: resolve("freehold.lock") } : {}),
        allowedHosts: [...config.allowedHosts],
        logOutput: process.stdout,
        // Loading, loaded (with its duration), failed and unloaded are in the log (src/main.ts logEngineEvent).
        onEngineEvent: (event) => {
          if (event.type === "runner-crashed")
            print(`runner for ${event.model} stopped unexpectedly (${event.detail}); it restarts on the next request`);
        },
      });
      if (options.demo !== false && (await ensureDemoModel(freehold.store))) {
        print(
          `The model store (${config.home}) was empty, so freehold installed ${DEMO_MODEL}: stories260K, a tiny real model`,
        );
        print(
          'trained on children\'s stories (llama2.c, MIT). It continues text: try the prompt "Once upon a time". For a',
        );
        print("model of your own: freehold import FILE.gguf --name NAME, or freehold pull hf.co/OWNER/REPO");
      }
      const running = await startServer(freehold, { insecureNoAuth: options.insecureNoAuth === true }).catch(
        async (error: unknown) => {
          await freehold.close();
          if ((error as NodeJS.ErrnoException).code === "EADDRINUSE")
            throw new Error(await portInUseMessage(config.host, config.port));
          throw error;
        },
      );
      const models = await freehold.store.list();
      print(`freehold is listening on ${running.url} (OpenAI-compatible API at ${running.url}/v1)`);
      print(`models: ${models.map((m) => m.name).join(", ") || "none"}`);
      reportRouting(freehold.settings);
      // SIGHUP re-reads freehold.yaml and swaps the routing table; requests in flight keep the old one.
      process.on("SIGHUP", () => {
        freehold.reloadRouting(offline).then(
          (settings) => {
            reportRouting(settings);
            print("SIGHUP: reloaded the configuration");
          },
          (error: unknown) =>
            print(`SIGHUP: kept the running configuration: ${error instanceof Error ? error.message : String(error)}`),
        );
      });
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (signal: NodeJS.Signals) => {
          if (stopping) {
            print(`${signal} again: stopping now`);
            process.exit(130);
          }
          stopping = true;
          print(`${signal}: finishing in-flight requests (up to ${config.drainTimeoutSeconds}s), then stopping`);
          void running.shutdown().then(resolve);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
      print("stopped");
    });
}

function reportRouting(settings: Settings): void {
  if (!settings.file) return;
  const routes = Object.keys(settings.file.routes);
  const remote = Object.entries(settings.file.providers).filter(([, provider]) => provider.kind !== "local");
  print(`config: ${settings.filePath} (routes: ${routes.join(", ") || "none"})`);
  if (settings.offline) print("offline: no request leaves this machine");
  else if (remote.length > 0)
    print(
      `may send to: ${remote.map(([name, provider]) => `${name} (${new URL(provider.base_url ?? "").origin})`).join(", ")}`,
    );
}
