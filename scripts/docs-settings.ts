/**
 * Writes README's settings table from the settings table (src/config/settings.ts): `npm run docs:settings`.
 * `--check` only says whether README is current (exit 1 when stale).
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { withSettingsTable } from "../src/config/settingsDoc.js";

const path = fileURLToPath(new URL("../README.md", import.meta.url));
const readme = readFileSync(path, "utf8");
const updated = withSettingsTable(readme);
if (process.argv.includes("--check")) {
  if (updated !== readme) {
    process.stderr.write("README.md's settings table is stale: run npm run docs:settings\n");
    process.exitCode = 1;
  }
} else if (updated !== readme) {
  writeFileSync(path, updated);
  process.stdout.write("README.md: settings table written\n");
} else {
  process.stdout.write("README.md: settings table already current\n");
}
