import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";
import { projectRoot } from "./helpers/paths.js";

/** Which top-level folders of src/ each folder may import (docs/architecture.md). */
const allowed: Record<string, string[]> = {
  core: [],
  config: ["core"],
  gguf: ["core"],
  store: ["core", "gguf"],
  engine: ["core", "gguf"],
  gateway: ["core"],
  hub: ["core"],
  supply: ["core", "gguf", "store", "hub"],
  privacy: ["core"],
  providers: ["core"],
  routing: ["core", "config", "privacy", "providers"],
  http: ["core", "gateway"],
  control: ["core", "config"],
  eval: ["core", "control"],
  mcp: ["core", "config"],
  cli: ["*"],
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith(".ts") && !path.endsWith(".test.ts") ? [path] : [];
  });
}

const src = join(projectRoot, "src");
const files = sourceFiles(src).map((path) => ({ path, rel: relative(src, path), text: readFileSync(path, "utf8") }));

test("each folder imports only the layers below it", () => {
  const violations: string[] = [];
  for (const file of files) {
    const layer = file.rel.includes("/") ? file.rel.split("/")[0]! : "(root)";
    const rules = allowed[layer];
    if (!rules || rules.includes("*")) continue;
    for (const match of file.text.matchAll(/from\s+"(\.[^"]+)"/g)) {
      const target = relative(src, join(file.path, "..", match[1]!));
      const targetLayer = target.includes("/") ? target.split("/")[0]! : "(root)";
      if (targetLayer !== layer && !rules.includes(targetLayer)) violations.push(`${file.rel} imports ${target}`);
    }
  }
  assert.deepEqual(violations, []);
});

test("only src/engine imports node-llama-cpp, and only src/config reads process.env", () => {
  const llama = files.filter(
    (f) => /from\s+"node-llama-cpp"|import\("node-llama-cpp"\)/.test(f.text) && !f.rel.startsWith("engine/"),
  );
  assert.deepEqual(
    llama.map((f) => f.rel),
    [],
  );
  const env = files.filter((f) => /process\.env/.test(f.text) && !f.rel.startsWith("config/"));
  assert.deepEqual(
    env.map((f) => f.rel),
    [],
  );
});

// The composition root and the facades it hands out (the library's httpApp, the server) hold the HTTP app's type.
const compositionFiles = ["main.ts", "library.ts", "server.ts"];

test("nothing below http/ knows the web framework", () => {
  const hono = files.filter(
    (f) =>
      /from\s+"(hono|@hono\/[^"]+)"/.test(f.text) && !f.rel.startsWith("http/") && !compositionFiles.includes(f.rel),
  );
  assert.deepEqual(
    hono.map((f) => f.rel),
    [],
  );
});

test("only src/providers (and the hub client, MCP clients, and the CLI talking to a local server) open network connections", () => {
  // What `freehold doctor --egress` promises: the configured providers are the only destinations requests reach.
  const network = files.filter((f) => {
    // src/mcp connects to the owner's MCP servers (listed by `doctor --egress`).
    if (/^(providers|hub|mcp|cli)\//.test(f.rel)) return false;
    // The llama-server engine's client reaches only the Unix socket of the llama-server its runner started: it may
    // use node:http, but only with a socketPath, never a host or port.
    if (f.rel === "engine/runner/llamaServerClient.ts")
      return !/socketPath/.test(f.text) || /\b(host|hostname|port)\s*:|\bfetch\(|node:(https|net|tls)/.test(f.text);
    // node:net's address parsers (isIP, isIPv6) open nothing.
    const text = f.text.replace(/import \{ (isIP|isIPv4|isIPv6)(, (isIP|isIPv4|isIPv6))* \} from "node:net";/g, "");
    return /\bfetch\(|from\s+"node:(https?|net|tls|http2)"|from\s+"(undici|axios|node-fetch)"/.test(text);
  });
  assert.deepEqual(
    network.map((f) => f.rel),
    [],
  );
});

test("the version the CLI and API report is package.json's", async () => {
  const { VERSION } = await import("../src/version.js");
  const pkg = JSON.parse(readFileSync(join(projectRoot, "package.json"), "utf8")) as { version: string };
  assert.equal(VERSION, pkg.version);
});
