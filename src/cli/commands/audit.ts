import type { Command } from "commander";
import { commandConfig, controlFor, print } from "../context.js";
import { formatTable } from "../table.js";

export function registerAudit(program: Command): void {
  const audit = program
    .command("audit")
    .description("the tamper-evident audit trail of administrative actions and routing");

  audit
    .command("verify")
    .description("check the hash chain: exits 1 if any entry was edited, inserted or deleted")
    .action((_options: unknown, command: Command) => {
      const control = controlFor(command);
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
    .option("--format <format>", "table or json", "table")
    .action((options: Record<string, string>, command: Command) => {
      const limit = Number(options.limit);
      if (!Number.isInteger(limit) || limit < 1) throw new Error(`--limit must be a whole number of at least 1`);
      const control = controlFor(command);
      try {
        const entries = control.audit.list({ limit });
        if (options.format === "json") return print(JSON.stringify(entries, null, 2));
        const rows = entries.map((entry) => [
          String(entry.seq),
          entry.time,
          entry.actor,
          entry.action,
          entry.target ?? "",
          entry.detail && "why" in entry.detail ? String(entry.detail.why) : "",
        ]);
        for (const line of formatTable(["SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "WHY"], rows)) print(line);
      } finally {
        control.close();
      }
    });
}
