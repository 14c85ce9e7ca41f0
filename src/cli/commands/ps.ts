import type { Command } from "commander";
import { commandConfig, print, serverUrl } from "../context.js";
import { formatSize } from "../humanize.js";
import { formatTable } from "../table.js";

interface PsModel {
  name: string;
  size: number;
  expires_at: string | null;
  details?: {
    threads?: number;
    context_length?: number;
    backend?: string;
    threads_when_busy?: number;
    state?: string;
    slots?: number;
    active_requests?: number;
    queued_requests?: number;
  };
}

export function registerPs(program: Command): void {
  program
    .command("ps")
    .description("show the models a running `freehold serve` has loaded")
    .option("--host <host>", "server address (default from config)")
    .option("--port <port>", "server port (default from config)")
    .option("--json", "print JSON")
    .action(async (options: { host?: string; port?: string; json?: boolean }, command: Command) => {
      const config = commandConfig(command, {
        ...(options.host ? { host: options.host } : {}),
        ...(options.port ? { port: options.port } : {}),
      });
      const url = `${serverUrl(config)}/api/ps`;
      let response: Response;
      try {
        response = await fetch(url, { signal: AbortSignal.timeout(5000) });
      } catch {
        throw new Error(`no freehold server answered at ${url}; start one with \`freehold serve\``);
      }
      if (!response.ok) throw new Error(`the server at ${url} answered ${response.status}`);
      const body = (await response.json()) as { models: PsModel[] };
      if (options.json) {
        print(JSON.stringify(body, null, 2));
        return;
      }
      const rows = body.models.map((m) => [
        m.name,
        formatSize(m.size),
        m.details?.state ?? "",
        `${m.details?.active_requests ?? 0}/${m.details?.slots ?? "?"}`,
        String(m.details?.queued_requests ?? 0),
        // "1–2": one thread while one request generates, two while several share each decode.
        m.details?.threads_when_busy !== undefined && m.details.threads_when_busy !== m.details.threads
          ? `${m.details.threads}–${m.details.threads_when_busy}`
          : String(m.details?.threads ?? ""),
        String(m.details?.context_length ?? ""),
        m.details?.backend ?? "",
        m.expires_at ? `in ${Math.max(0, Math.round((Date.parse(m.expires_at) - Date.now()) / 1000))}s` : "when idle",
      ]);
      const head = ["NAME", "MEMORY", "STATE", "BUSY", "QUEUED", "THREADS", "CONTEXT", "PROCESSOR", "UNLOADS"];
      for (const line of formatTable(head, rows)) print(line);
    });
}
