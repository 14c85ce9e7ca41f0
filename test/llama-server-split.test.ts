import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { engines } from "./helpers/engines.js";
import { splitRealGguf } from "./helpers/gguf.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

/**
 * A split (multi-file) GGUF model on both engines: stories260K cut into three shards as gguf-split lays them out
 * answers exactly as the whole file does. On llama-server the store's digest-named blobs reach it as links named
 * PREFIX-0000k-of-00003.gguf, from which llama.cpp finds the other shards.
 */
for (const engine of engines)
  describe(`a split model on ${engine.name}`, { skip: storiesModelMissing || engine.skip }, () => {
    const directory = temporaryDirectory("freehold-split-");
    let server: ServerProcess;
    before(async () => {
      const [first] = splitRealGguf(storiesModelPath, directory.path, "stories", 3);
      server = await startServerProcess({ models: { whole: storiesModelPath, split: first! }, env: engine.env });
    });
    after(async () => {
      await server?.dispose();
      directory.dispose();
    });

    test("answers as the whole file does, and ps names the engine", async () => {
      const ask = async (model: string) => {
        const response = await postJson(`${server.url}/v1/completions`, {
          model,
          prompt: "Once upon a time",
          max_tokens: 12,
          temperature: 0,
        });
        const body = (await response.json()) as { choices: { text: string }[] };
        assert.equal(response.status, 200, JSON.stringify(body));
        return body.choices[0]!.text;
      };
      const split = await ask("split");
      assert.ok(split.startsWith(", there was a little girl named Lily"), split);
      assert.equal(split, await ask("whole"));
      const ps = (await (await fetch(`${server.url}/api/ps`)).json()) as {
        models: { name: string; details: { engine: string } }[];
      };
      assert.equal(ps.models.find((m) => m.name.startsWith("split"))?.details.engine, engine.name);
    });
  });
