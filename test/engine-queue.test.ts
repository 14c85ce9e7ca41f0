import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { engines } from "./helpers/engines.js";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";
import { longStream, startStream } from "./helpers/streams.js";

/** The queue's 503s on both runner kinds (test/engine-parity.test.ts has the rest; split to stay within a file's time). */

for (const engine of engines) {
  describe(`engine ${engine.name}: the queue`, { skip: storiesModelMissing || engine.skip }, () => {
    let server: ServerProcess;
    before(async () => {
      server = await startServerProcess({
        models: { stories: storiesModelPath },
        args: ["--parallel", "1", "--max-queue", "1"],
        env: { ...engine.env, FREEHOLD_QUEUE_TIMEOUT: "1.5" },
      });
    });
    after(() => server?.dispose());

    test("past the queue an immediate 503 queue_full; past the timeout 503 queue_timeout", async () => {
      const running = await startStream(`${server.url}/v1/completions`, longStream);
      const queued = postJson(`${server.url}/v1/completions`, { model: "stories", prompt: "x", max_tokens: 2 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      const rejected = await postJson(`${server.url}/v1/completions`, { model: "stories", prompt: "y", max_tokens: 2 });
      assert.equal(rejected.status, 503);
      assert.equal(((await rejected.json()) as { error: { code: string } }).error.code, "queue_full");
      assert.match(rejected.headers.get("retry-after") ?? "", /^\d+$/);
      const timedOut = await queued;
      assert.equal(timedOut.status, 503);
      assert.equal(((await timedOut.json()) as { error: { code: string } }).error.code, "queue_timeout");
      await running.hangUp();
    });
  });
}
