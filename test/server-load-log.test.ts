import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { writeSmallGguf } from "./helpers/gguf.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, startServerProcess } from "./helpers/server.js";

// Issue 20 item 9: the server logs model loading (its own file: a server and two imports take most of a file's time
// budget on a busy machine).

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
