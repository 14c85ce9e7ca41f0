import type { Command } from "commander";
import { toCsv } from "../control/usageReport.js";
import { UsageError } from "./errors.js";
import { formatTable } from "./table.js";

/**
 * One output scheme for every command that prints data: `--format text|json|csv` (csv where the output is rows),
 * `--json` as the short form of `--format json`. Data goes to stdout, messages to stderr. `table` is accepted as
 * another name for `text`, the default, human form.
 */
export type OutputFormat = "text" | "json" | "csv";

export function withFormat(command: Command, formats: readonly OutputFormat[] = ["text", "json"]): Command {
  return command
    .option("--format <format>", `output format: ${formats.join(", ")} (default text)`)
    .option("--json", "same as --format json");
}

/** The format the flags chose, or a usage error naming the choices. */
export function outputFormat(
  options: { format?: unknown; json?: unknown },
  formats: readonly OutputFormat[] = ["text", "json"],
): OutputFormat {
  const asked = options.json === true ? "json" : options.format === undefined ? "text" : String(options.format);
  const format = asked === "table" ? "text" : asked;
  if (options.json === true && options.format !== undefined && options.format !== "json")
    throw new UsageError(`--json and --format ${String(options.format)} disagree: pass one of them`);
  if (!formats.includes(format as OutputFormat))
    throw new UsageError(`--format must be ${formats.join(", ")}, not ${JSON.stringify(asked)}`);
  return format as OutputFormat;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Rows in the chosen form: aligned columns (text) or CSV with the same header. */
export function printRows(format: OutputFormat, head: string[], rows: string[][]): void {
  if (format === "csv") {
    process.stdout.write(toCsv(head, rows));
    return;
  }
  for (const line of formatTable(head, rows)) process.stdout.write(`${line}\n`);
}
