import type { Command } from "commander";
import { commandSettings, print } from "../context.js";
import { egressReport } from "../egress.js";
import { outputFormat, printJson, withFormat } from "../output.js";

export function registerDoctor(program: Command): void {
  withFormat(
    program
      .command("doctor")
      .description("check this installation")
      .option("--egress", "list every network destination the configuration could contact, and why")
      .option("--offline", "as `serve --offline` would run"),
  ).action((options: { egress?: boolean; offline?: boolean; format?: string; json?: boolean }, command: Command) => {
    const format = outputFormat(options);
    const settings = commandSettings(command, {}, options.offline ? true : undefined);
    const { config } = settings;
    const summary = { config: settings.filePath, home: config.home, listening: `${config.host}:${config.port}` };
    if (!options.egress) {
      if (format === "json") return printJson(summary);
      print(`config: ${settings.filePath ?? "none (everything local)"}; home: ${config.home}`);
      print("run `freehold doctor --egress` to list where data could go");
      return;
    }
    const report = egressReport(settings);
    if (format === "json") return printJson({ ...summary, ...report });
    print(`config: ${settings.filePath ?? "none"}`);
    print(`listening: ${summary.listening} (inbound only)`);
    if (report.offline) {
      print("outbound: nothing. Offline: freehold contacts no other machine; requests that would leave fail instead");
      for (const d of report.destinations) print(`  configured but forbidden: ${d.origin} (${d.detail})`);
    } else {
      print("outbound destinations:");
      for (const d of report.destinations) print(`  ${d.origin}  ${d.detail}`);
    }
    print("telemetry, update checks, price-list fetches: none (freehold has none of them)");
  });
}
