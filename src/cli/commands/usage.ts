import type { Command } from "commander";
import { usageColumns, usageCsv } from "../../control/usageReport.js";
import { print } from "../context.js";
import { openCommandControl } from "../controlPlane.js";
import { outputFormat, printJson } from "../output.js";
import { formatTable } from "../table.js";

export function registerUsage(program: Command): void {
  program
    .command("usage")
    .description("who used what, what it cost, and what running locally saved (from the usage ledger)")
    .option("--by <groups>", "group by key, model, day, provider, api or status (comma-separated)", "key")
    .option("--since <when>", "a duration back from now (7d, 24h) or a date (default: everything)")
    .option("--key <name>", "only this key")
    .option("--format <format>", "output format: text, json, csv (default text)")
    .option("--json", "same as --format json")
    .action(async (options: Record<string, string | undefined>, command: Command) => {
      const format = outputFormat(options, ["text", "json", "csv"]);
      const control = await openCommandControl(command);
      try {
        const lines = await control.admin.usage({
          ...(options.by ? { by: options.by } : {}),
          ...(options.since ? { since: options.since } : {}),
          ...(options.key ? { key: options.key } : {}),
        });
        if (format === "json") return printJson(lines);
        if (format === "csv") {
          process.stdout.write(usageCsv(lines));
          return;
        }
        if (lines.length === 0) return print("no requests recorded in this period");
        const { head, rows } = usageColumns(lines);
        for (const line of formatTable(head, rows)) print(line);
        const local = control.prices.local;
        print();
        print(
          `WOULD_HAVE_COST prices local requests as ${local.equivalentModel}; ELECTRICITY assumes ${local.watts} W at $${local.usdPerKwh}/kWh (set both in prices.yaml).`,
        );
      } finally {
        await control.close();
      }
    });
}
