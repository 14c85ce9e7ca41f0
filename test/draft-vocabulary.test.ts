import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { runCli } from "./helpers/cli.js";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

/** A draft model must share the model's vocabulary (src/engine/runner/draftVocabulary.ts); checked at load. */
describe("a draft model's vocabulary is checked against the model's", { skip: storiesModelMissing }, () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess({ models: { stories: storiesModelPath } });
  });
  after(async () => {
    await server?.dispose();
  });

  test("a draft whose vocabulary is not the model's is refused at load, naming both; a shared vocabulary drafts", async () => {
    // Two synthetic models with the tiny preset's vocabulary (1024 pieces), different weights; stories260K has 512.
    const env = { FREEHOLD_HOME: server.home };
    for (const [name, seed] of [
      ["tiny-a", 1],
      ["tiny-b", 2],
    ] as const) {
      const path = join(server.home, `${name}.gguf`);
      writeSyntheticModel(path, { preset: "tiny", quant: "f32", seed });
      const imported = await runCli(["import", path, "--name", name], { env });
      assert.equal(imported.code, 0, imported.stderr);
    }
    for (const [profile, draft] of [
      ["tiny-drafted-by-stories", "stories"],
      ["stories-drafted-by-tiny", "tiny-a"],
      ["tiny-drafted-by-tiny", "tiny-b"],
    ] as const) {
      const from = profile.startsWith("tiny") ? "tiny-a" : "stories";
      const file = join(server.home, `${profile}.yaml`);
      writeFileSync(file, `from: ${from}\ndraft: ${draft}\n`);
      const created = await runCli(["create", profile, "-f", file], { env });
      assert.equal(created.code, 0, created.stderr);
    }
    for (const [model, target, draft] of [
      ["tiny-drafted-by-stories", "tiny-drafted-by-stories", "stories"],
      ["stories-drafted-by-tiny", "stories-drafted-by-tiny", "tiny-a"],
    ]) {
      const response = await postJson(`${server.url}/v1/completions`, { model, prompt: "x", max_tokens: 2 });
      assert.equal(response.status, 500);
      const error = ((await response.json()) as { error: { code: string; message: string } }).error;
      assert.equal(error.code, "draft_vocabulary_mismatch");
      assert.match(
        error.message,
        new RegExp(`the draft model ${draft}(:latest)? cannot draft for ${target}(:latest)?`),
      );
      assert.match(error.message, /1024 vs 512 tokens|512 vs 1024 tokens/);
    }
    // The same vocabulary: it loads and answers (noise weights: only the mechanism is shown).
    const shared = await postJson(`${server.url}/v1/completions`, {
      model: "tiny-drafted-by-tiny",
      prompt: "x",
      max_tokens: 8,
      temperature: 0,
    });
    assert.equal(shared.status, 200, await shared.clone().text());
  });
});
