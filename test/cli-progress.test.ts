import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { writeSmallGguf } from "./helpers/gguf.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, startServerProcess } from "./helpers/server.js";

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

test("the server logs model loading: start, done with its duration, and a failure with the reason", {
  skip: storiesModelMissing,
}, async (t) => {
  const scratch = temporaryDirectory("freehold-load-log-");
  t.after(scratch.dispose);
  // A GGUF that parses (the store accepts it) but has no model in it (llama.cpp refuses to load it).
  const hollow = writeSmallGguf(join(scratch.path, "hollow.gguf"), 9);
  const server = await startServerProcess({
    models: { stories: storiesModelPath, hollow },
    args: ["--no-demo"],
    env: { FREEHOLD_LOG_LEVEL: "info" },
  });
  t.after(() => server.dispose());
  const answered = await postJson(`${server.url}/api/generate`, {
    model: "stories",
    prompt: "Once upon a time",
    stream: false,
    options: { num_predict: 3, temperature: 0 },
  });
  assert.equal(answered.status, 200, await answered.clone().text());
  const refused = await postJson(`${server.url}/api/generate`, { model: "hollow", prompt: "x", stream: false });
  assert.ok(refused.status >= 400, `hollow answered ${refused.status}`);

  // Not a TTY: pino's JSON lines on stdout.
  const entries = server
    .output()
    .split("\n")
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  const about = (model: string) => entries.filter((entry) => String(entry.model).startsWith(model));
  const stories = about("stories").map((entry) => entry.msg);
  assert.deepEqual(stories.slice(0, 2), ["model loading", "model loaded"], JSON.stringify(about("stories")));
  const loaded = about("stories").find((entry) => entry.msg === "model loaded")!;
  assert.equal(loaded.level, 30, "info");
  assert.equal(typeof loaded.loadMs, "number");
  assert.ok((loaded.loadMs as number) >= 0);
  assert.ok((loaded.threads as number) >= 1);
  const failure = about("hollow").find((entry) => entry.msg === "model load failed");
  assert.ok(failure, JSON.stringify(about("hollow")));
  assert.equal(failure.level, 50, "error");
  assert.equal(typeof failure.error, "string");
  assert.deepEqual(about("hollow")[0]?.msg, "model loading");
});
