import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import type { ModelCatalog, ModelControl } from "../src/core/catalog.js";
import { Gateway } from "../src/gateway/gateway.js";
import { createApp } from "../src/http/app.js";
import type { HttpControl } from "../src/http/control.js";
import { projectRoot } from "./helpers/paths.js";

/**
 * docs/compatibility.md is the published contract. These checks keep it from drifting: every route the server
 * registers is in it, and every test it cites as proof exists under that exact title.
 */
const doc = readFileSync(join(projectRoot, "docs/compatibility.md"), "utf8");

function registeredRoutes(): string[] {
  const unused = () => {
    throw new Error("not called");
  };
  const gateway = new Gateway({ generate: unused, embed: unused, listModels: unused, countTokens: unused });
  const app = createApp({
    gateway,
    health: { health: () => ({ ready: true, status: "ok", detail: {} }) },
    loadedModels: { loadedModels: () => [] },
    models: { load: unused, unload: unused } as ModelControl,
    catalog: { list: unused, describe: unused, copy: unused, remove: unused } as ModelCatalog,
    listenHost: "127.0.0.1",
    allowedHosts: [],
    maxBodyBytes: 1024,
    version: "0.0.0",
    // Registering reads neither: with them, the control plane's and the console's routes are listed too.
    control: {} as HttpControl,
    consoleSources: { routes: unused, recentDecisions: unused, evalRuns: unused, evalReport: unused },
  });
  return [
    ...new Set(
      app.routes
        .filter((route) => route.method !== "ALL")
        .map((route) => `${route.method} ${route.path.replace(/:(\w+)(\{[^}]*\})?/g, "{$1}")}`),
    ),
  ];
}

test("every route the server registers is in docs/compatibility.md", () => {
  const missing = registeredRoutes().filter((route) => !doc.includes(`\`${route}\``));
  assert.deepEqual(missing, []);
});

test("every test docs/compatibility.md cites as proof exists, under that title", () => {
  const citations = [...doc.matchAll(/`(test\/[\w.-]+\.test\.ts) › ([^`]+)`/g)];
  assert.ok(citations.length >= 20, `only ${citations.length} citations`);
  const problems: string[] = [];
  for (const [, file, title] of citations) {
    const path = join(projectRoot, file!);
    if (!existsSync(path)) {
      problems.push(`${file} does not exist`);
      continue;
    }
    const source = readFileSync(path, "utf8");
    if (!source.includes(JSON.stringify(title)) && !source.includes(`"${title}"`))
      problems.push(`${file} has no test titled "${title}"`);
  }
  assert.deepEqual(problems, []);
});
