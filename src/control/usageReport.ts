import type { UsageLine } from "./ledger.js";

export type UsageFormat = "table" | "csv" | "json";

const usd = (value: number) => (Math.abs(value) >= 0.01 || value === 0 ? value.toFixed(2) : value.toPrecision(2));

/** Column names and values of a usage line, in the order every format shows them. */
export function usageColumns(lines: readonly UsageLine[]): { head: string[]; rows: string[][] } {
  const groups = lines[0] ? Object.keys(lines[0].group) : [];
  const head = [
    ...groups.map((group) => group.toUpperCase()),
    "REQUESTS",
    "ERRORS",
    "PROMPT_TOKENS",
    "COMPLETION_TOKENS",
    "CACHED_TOKENS",
    "COST_USD",
    "REMOTE_USD",
    "ELECTRICITY_USD",
    "WOULD_HAVE_COST_USD",
    "SAVED_USD",
  ];
  const rows = lines.map((line) => [
    ...groups.map((group) => line.group[group] ?? ""),
    String(line.requests),
    String(line.errors),
    String(line.promptTokens),
    String(line.completionTokens),
    String(line.cachedTokens),
    usd(line.costUsd),
    usd(line.remoteCostUsd),
    usd(line.localCostUsd),
    usd(line.equivalentUsd),
    usd(line.savedUsd),
  ]);
  return { head, rows };
}

/** Rows as CSV text (RFC 4180 quoting), formula-looking cells made text. */
export function toCsv(head: readonly string[], rows: readonly (readonly string[])[]): string {
  return `${[head, ...rows].map((row) => row.map(csvCell).join(",")).join("\n")}\n`;
}

function csvCell(value: string): string {
  // A leading =, +, - or @ would be a formula in a spreadsheet: quote it as text.
  const safe = /^[=+\-@]/.test(value) && !/^-?\d/.test(value) ? `'${value}` : value;
  return /[",\n]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export function usageCsv(lines: readonly UsageLine[]): string {
  const { head, rows } = usageColumns(lines);
  return toCsv(head, rows);
}
