// Runs every *.test.ts under src/ and test/ with node's built-in runner (through tsx).
// Node 20's `node --test` finds no .ts files by itself and quoted globs fail, so list them here.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out;
}

const filter = process.argv.slice(2);
let files = ["src", "test"].flatMap((dir) => find(dir)).sort();
if (filter.length > 0) files = files.filter((file) => filter.some((f) => file.includes(f)));
if (files.length === 0) {
  console.error("no test files matched");
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-reporter=spec", "--test-timeout=120000", ...files],
  { stdio: "inherit" },
);
process.exit(result.status ?? 1);
