import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { writeSmallGguf } from "./helpers/gguf.js";
import { temporaryDirectory } from "./helpers/paths.js";

// Issue 20 item 9: long work shows progress. A pipe (as here) gets no bar and exactly one summary line on stderr.

const summary = (label: string) =>
  new RegExp(`^${label}: hashed \\d+(\\.\\d)? [KMG]?B in \\d+\\.\\d s \\(\\d+(\\.\\d)? [KMG]?B/s\\)$`, "m");

test("import, verify and adopt hash silently into a pipe and end with one summary line on stderr", async (t) => {
  const scratch = temporaryDirectory("freehold-progress-");
  t.after(scratch.dispose);
  const env = { FREEHOLD_HOME: join(scratch.path, "home"), FREEHOLD_LOG_LEVEL: "warn" };
  const file = writeSmallGguf(join(scratch.path, "small.gguf"), 7);

  const imported = await runCli(["import", file, "--name", "small"], { env });
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stderr, summary("import small"));
  assert.match(imported.stdout, /^imported small:latest\n/, "data on stdout, the progress summary on stderr");

  const verified = await runCli(["verify"], { env });
  assert.equal(verified.code, 0, verified.stderr);
  assert.match(verified.stderr, summary("verify"));

  // Adopt: an Ollama-shaped folder named by OLLAMA_MODELS (see adopt-locations.test.ts for the layouts).
  const models = join(scratch.path, "ollama");
  mkdirSync(join(models, "blobs"), { recursive: true });
  const { createHash } = await import("node:crypto");
  const { readFileSync, writeFileSync } = await import("node:fs");
  const bytes = readFileSync(writeSmallGguf(join(scratch.path, "other.gguf"), 8));
  const hex = createHash("sha256").update(bytes).digest("hex");
  writeFileSync(join(models, "blobs", `sha256-${hex}`), bytes);
  mkdirSync(join(models, "manifests", "registry.ollama.ai", "library", "other"), { recursive: true });
  writeFileSync(
    join(models, "manifests", "registry.ollama.ai", "library", "other", "latest"),
    JSON.stringify({ layers: [{ mediaType: "application/vnd.ollama.image.model", digest: `sha256:${hex}` }] }),
  );
  const adopted = await runCli(
    ["adopt", "--all", "--search-home", join(scratch.path, "nobody"), "--search-root", scratch.path],
    { env: { ...env, OLLAMA_MODELS: models, HF_HOME: "", HF_HUB_CACHE: "" } },
  );
  assert.equal(adopted.code, 0, adopted.stderr);
  assert.match(adopted.stderr, summary("adopt other:latest"));

  for (const result of [imported, verified, adopted]) {
    assert.ok(
      !result.stderr.includes("\r") && !result.stderr.includes("\u001b["),
      "no bar, no cursor control in a pipe",
    );
    assert.equal(result.stderr.trimEnd().split("\n").length, 1, `one line: ${result.stderr}`);
  }

  // A failed import says why, and no "hashed" summary claims success.
  const broken = join(scratch.path, "broken.gguf");
  writeFileSync(broken, "GGUF but not really");
  const failed = await runCli(["import", broken, "--name", "broken"], { env });
  assert.equal(failed.code, 1);
  assert.doesNotMatch(failed.stderr, /hashed/);
});
