import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { loadPriceTable } from "../control/prices.js";
import { readPricesFile } from "./pricesFile.js";

const home = mkdtempSync(join(tmpdir(), "freehold-prices-"));
after(() => rmSync(home, { recursive: true, force: true }));
const write = (text: string) => writeFileSync(join(home, "prices.yaml"), text);

test("prices.yaml overrides and extends the shipped prices; without one, the shipped table", () => {
  rmSync(join(home, "prices.yaml"), { force: true });
  assert.equal(readPricesFile(home), null);
  write(
    "models:\n  my-model:\n    input_per_million: 1\n    output_per_million: 2\n    date: 2026-01-02\n    source: https://example.com\nlocal:\n  watts: 100\n",
  );
  const table = loadPriceTable(home);
  assert.equal(table.cost("my-model", 1_000_000, 1_000_000), 3);
  assert.equal(table.local.watts, 100);
  assert.ok(table.lookup("gpt-4o"), "the shipped prices stay");
});

test("a bad prices.yaml names the file and the key: wrong type, out of range, unknown (misspelt) key", () => {
  const path = join(home, "prices.yaml");
  write("local:\n  watts: lots\n");
  assert.throws(() => loadPriceTable(home), new RegExp(`${path}: local\\.watts .*expected number`));
  write("local:\n  usd_per_kwh: 1000\n");
  assert.throws(() => loadPriceTable(home), /local\.usd_per_kwh .*<=100/);
  // A misspelt key used to be ignored in silence: the machine's power draw stayed 65 W.
  write("local:\n  wats: 100\n");
  assert.throws(
    () => loadPriceTable(home),
    /local has an unknown key wats \(it takes equivalent_model, watts, usd_per_kwh\)/,
  );
  write("model:\n  x: {}\n");
  assert.throws(() => loadPriceTable(home), /file has an unknown key model \(it takes models, local\)/);
});
