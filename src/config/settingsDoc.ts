import { type Setting, settingNames, settings } from "./settings.js";

/**
 * README's settings table, made from the table in settings.ts (`npm run docs:settings` writes it between the
 * markers; src/config/settingsDoc.test.ts fails when README is stale).
 */

export const settingsSectionStart = "<!-- settings:start (npm run docs:settings writes this table) -->";
export const settingsSectionEnd = "<!-- settings:end -->";

/** A Markdown table: one row per setting, columns padded so the source reads as a table too. */
export function renderSettingsTable(): string {
  const rows = settingNames.map((name) => {
    const row = settings[name] as unknown as Setting;
    return [`\`${row.env}\``, row.file ? `\`${row.file}\`` : "", row.shown, row.description.replaceAll("|", "\\|")];
  });
  const header = ["Variable", "freehold.yaml", "Default", "Meaning"];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]) => `| ${cells.map((cell, column) => cell.padEnd(widths[column]!)).join(" | ")} |`;
  return [line(header), line(widths.map((width) => "-".repeat(width))), ...rows.map(line)].join("\n");
}

/** `readme` with the text between the markers replaced by the table; an error when the markers are missing. */
export function withSettingsTable(readme: string): string {
  const start = readme.indexOf(settingsSectionStart);
  const end = readme.indexOf(settingsSectionEnd);
  if (start < 0 || end < start)
    throw new Error(`README.md has no settings section: put ${settingsSectionStart} and ${settingsSectionEnd} in it`);
  return `${readme.slice(0, start + settingsSectionStart.length)}\n\n${renderSettingsTable()}\n\n${readme.slice(end)}`;
}
