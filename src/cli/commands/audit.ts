import type { Command } from "commander";
import { ControlPlane } from "../../control/controlPlane.js";
import { commandConfig, print } from "../context.js";
import { UsageError } from "../errors.js";
import { outputFormat, printJson, printRows } from "../output.js";

export function registerAudit(program: Command): void {
  const audit = program
    .command("audit")
    .description("the tamper-evident audit trail of administrative actions and routing");

  audit
    .command("verify")
    .description("check the hash chain: exits 1 if any entry was edited, inserted or deleted")
    .action((_options: unknown, command: Command) => {
      const control = new ControlPlane({ home: commandConfig(command).home, logLevel: "silent" });
      try {
        const result = control.audit.verify();
        if (!result.ok) {
          process.exitCode = 1;
          print(`audit trail is NOT intact: ${result.problem}`);
          return;
        }
        print(`audit trail intact: ${result.entries} entries, head ${result.head}`);
      } finally {
        control.close();
      }
    });

  audit
    .command("list")
    .description("show the most recent entries")
    .option("--limit <n>", "how many", "50")
    .option("--format <format>", "output format: text, json, csv (default text)")
    .option("--json", "same as --format json")
    .action((options: Record<string, string>, command: Command) => {
      const format = outputFormat(options, ["text", "json", "csv"]);
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new UsageError(`--limit must be a whole number of at least 1`);
      const control = new ControlPlane({ home: commandConfig(command).home, logLevel: "silent" });
      try {
        const entries = control.audit.list({ limit });
        if (format === "json") return printJson(entries);
        const rows = entries.map((entry) => [
          String(entry.seq),
          entry.time,
          entry.actor,
          entry.action,
          entry.target ?? "",
          entry.detail && "why" in entry.detail ? String(entry.detail.why) : "",
        ]);
        printRows(format, ["SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "WHY"], rows);
      } finally {
        control.close();
      }
    });
}
