#!/usr/bin/env node
// Launcher: the CLI is compiled to dist/ by `npm ci` (the `prepare` script).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

const entry = new URL("../dist/cli/main.js", import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  console.error(
    "freehold: the compiled CLI is missing (dist/cli/main.js). Run `npm run build` in the freehold folder.",
  );
  process.exit(1);
}
const { main } = await import(entry.href);
await main(process.argv);
