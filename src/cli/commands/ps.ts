import type { Command } from "commander";
import { fetchServer, serverFailure, serverTarget, withServerFlags } from "../context.js";
import { formatSize } from "../humanize.js";
import { outputFormat, printJson, printRows, withFormat } from "../output.js";

const formats = ["text", "json", "csv"] as const;

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
    kv_cache_type?: string;
    flash_attention?: string;
  };
}

type Options = { host?: string; port?: string; apiKey?: string; format?: string; json?: boolean };

export function registerPs(program: Command): void {
  withFormat(
    withServerFlags(program.command("ps").description("show the models a running `freehold serve` has loaded")),
    formats,
  )
    .option("--port <port>", "server port (default from config; or write it in --host)")
    .action(async (options: Options, command: Command) => {
      const format = outputFormat(options, formats);
      const target = serverTarget(command, options);
      const response = await fetchServer(target, "/api/ps", { signal: AbortSignal.timeout(5000) });
      if (!response.ok) throw await serverFailure(response, target);
      const body = (await response.json()) as { models: PsModel[] };
      if (format === "json") return printJson(body);
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
        // "q8_0 fa=on": the KV cache's type and flash attention (FREEHOLD_KV_CACHE_TYPE, FREEHOLD_FLASH_ATTENTION).
        m.details?.kv_cache_type ? `${m.details.kv_cache_type} fa=${m.details.flash_attention ?? "auto"}` : "",
        m.details?.backend ?? "",
        m.expires_at ? `in ${Math.max(0, Math.round((Date.parse(m.expires_at) - Date.now()) / 1000))}s` : "when idle",
      ]);
      const head = [
        "NAME",
        "MEMORY",
        "STATE",
        "BUSY",
        "QUEUED",
        "THREADS",
        "CONTEXT",
        "KV CACHE",
        "PROCESSOR",
        "UNLOADS",
      ];
      printRows(format, head, rows);
    });
}
