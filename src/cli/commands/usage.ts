import type { Command } from "commander";
import { usageColumns, usageCsv } from "../../control/usageReport.js";
import { controlFor, print } from "../context.js";
import { formatTable } from "../table.js";

export function registerUsage(program: Command): void {
  program
    .command("usage")
    .description("who used what, what it cost, and what running locally saved (from the usage ledger)")
    .option("--by <groups>", "group by key, model, day, provider, api or status (comma-separated)", "key")
    .option("--since <when>", "a duration back from now (7d, 24h) or a date (default: everything)")
    .option("--key <name>", "only this key")
    .option("--format <format>", "table, csv or json", "table")
    .action((options: Record<string, string | undefined>, command: Command) => {
      if (!["table", "csv", "json"].includes(options.format ?? ""))
        throw new Error(`--format must be table, csv or json, not ${JSON.stringify(options.format)}`);
      const control = controlFor(command);
      try {
        const lines = control.admin.usage({
          ...(options.by ? { by: options.by } : {}),
          ...(options.since ? { since: options.since } : {}),
          ...(options.key ? { key: options.key } : {}),
        });
        if (options.format === "json") return print(JSON.stringify(lines, null, 2));
        if (options.format === "csv") {
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
        control.close();
      }
    });
}
