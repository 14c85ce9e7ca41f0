// Prints the web console's JavaScript budget: the built bundle's size, raw and gzipped (what a browser downloads).
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";

const assets = resolve(import.meta.dirname, "..", "dist", "console", "assets");
let raw = 0;
let gzipped = 0;
for (const name of readdirSync(assets)) {
  if (!name.endsWith(".js") && !name.endsWith(".css")) continue;
  const bytes = readFileSync(join(assets, name));
  raw += bytes.length;
  gzipped += gzipSync(bytes, { level: 9 }).length;
  console.log(
    `console: ${name} ${(bytes.length / 1024).toFixed(1)} KB, ${(gzipSync(bytes, { level: 9 }).length / 1024).toFixed(1)} KB gzipped`,
  );
}
console.log(`console: total ${(raw / 1024).toFixed(1)} KB, ${(gzipped / 1024).toFixed(1)} KB gzipped (budget 150 KB)`);
