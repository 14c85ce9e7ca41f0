import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { settingNames, settings } from "./settings.js";
import { renderSettingsTable, withSettingsTable } from "./settingsDoc.js";

const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

test("README's settings table is the one the settings table makes (npm run docs:settings)", () => {
  assert.ok(
    withSettingsTable(readme) === readme,
    "README.md's settings table is stale: run `npm run docs:settings` and commit README.md",
  );
});

test("the rendered table has one row per setting, naming its variable, file key and default", () => {
  const rows = renderSettingsTable().split("\n").slice(2);
  assert.equal(rows.length, settingNames.length);
  for (const [i, name] of settingNames.entries()) {
    const row: { env: string; file?: string; shown: string } = settings[name];
    assert.match(rows[i]!, new RegExp(`^\\| \`${row.env}\` +\\| ${row.file ? `\`${row.file}\`` : " *"} +\\|`));
    assert.ok(rows[i]!.includes(row.shown), `${row.env}'s default`);
  }
});

test("a README without the markers is an error that says where the table goes", () => {
  assert.throws(() => withSettingsTable("# freehold\n"), /settings:start/);
});
