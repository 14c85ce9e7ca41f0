import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { runCli } from "./helpers/cli.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";
import { longStream, startStream } from "./helpers/streams.js";

interface PsModel {
  name: string;
  size: number;
  expires_at: string | null;
}

async function loaded(server: ServerProcess): Promise<PsModel[]> {
  return ((await (await fetch(`${server.url}/api/ps`)).json()) as { models: PsModel[] }).models;
}

async function complete(server: ServerProcess, model: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return postJson(`${server.url}/v1/completions`, { model, prompt: "Once upon a time", max_tokens: 4, ...extra });
}

describe("residency: memory budget, LRU unloading, keep_alive, stop", { skip: storiesModelMissing }, () => {
  const files = temporaryDirectory();
  let server: ServerProcess;
  before(async () => {
    const tiny = join(files.path, "tiny.gguf");
    writeSyntheticModel(tiny, { preset: "tiny", quant: "f32", seed: 1 });
    // Each model needs about 70 MiB here (weights, KV cache for 4 slots of 2,048 tokens, buffers): 100 MiB fits one.
    server = await startServerProcess({
      models: { stories: storiesModelPath, tiny },
      args: ["--context-size", "2048"],
      env: { FREEHOLD_MEMORY_BUDGET: "100MiB" },
    });
  });
  after(async () => {
    await server?.dispose();
    files.dispose();
  });

  test("two models under a budget that fits one: loading the second unloads the first", async () => {
    assert.equal((await complete(server, "stories")).status, 200);
    assert.deepEqual(
      (await loaded(server)).map((m) => m.name),
      ["stories:latest"],
    );
    const first = (await loaded(server))[0]!;
    assert.ok(first.size > 60 * 1024 * 1024 && first.size < 100 * 1024 * 1024, `estimated ${first.size} bytes`);
    assert.equal((await complete(server, "tiny")).status, 200);
    assert.deepEqual(
      (await loaded(server)).map((m) => m.name),
      ["tiny:latest"],
    );
    assert.equal((await complete(server, "stories")).status, 200);
    assert.deepEqual(
      (await loaded(server)).map((m) => m.name),
      ["stories:latest"],
    );
  });

  test("while the loaded model is busy, another that does not fit beside it gets 503 with Retry-After", async () => {
    const busy = await startStream(`${server.url}/v1/completions`, longStream);
    const refused = await complete(server, "tiny");
    assert.equal(refused.status, 503);
    assert.ok(refused.headers.get("retry-after"));
    const body = (await refused.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "insufficient_memory_busy");
    assert.match(body.error.message, /not enough memory to load tiny:latest/);
    await busy.hangUp();
  });

  test("keep_alive 0 unloads right after the answer; -1 keeps it; a duration sets when it expires", async () => {
    assert.equal((await complete(server, "stories", { keep_alive: "10m" })).status, 200);
    const expires = Date.parse((await loaded(server))[0]!.expires_at ?? "");
    assert.ok(Math.abs(expires - (Date.now() + 600_000)) < 5000, "expires in about 10 minutes");
    assert.equal((await complete(server, "stories", { keep_alive: -1 })).status, 200);
    assert.equal((await loaded(server))[0]!.expires_at, null);
    assert.equal((await complete(server, "stories", { keep_alive: 0 })).status, 200);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.deepEqual(await loaded(server), []);
    const bad = await complete(server, "stories", { keep_alive: "soon" });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { param: string } }).error.param, "keep_alive");
  });

  test("freehold stop unloads a model", async () => {
    assert.equal((await complete(server, "tiny")).status, 200);
    const port = new URL(server.url).port;
    const stopped = await runCli(["stop", "tiny", "--port", port], { env: { FREEHOLD_HOME: server.home } });
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.match(stopped.stdout, /unloaded tiny/);
    assert.deepEqual(await loaded(server), []);
    const again = await runCli(["stop", "tiny", "--port", port], { env: { FREEHOLD_HOME: server.home } });
    assert.match(again.stdout, /tiny was not loaded/);
    const missing = await runCli(["stop", "nope", "--port", port], { env: { FREEHOLD_HOME: server.home } });
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /does not exist/);
  });
});

describe("a model that cannot fit even alone", { skip: storiesModelMissing }, () => {
  test("is refused with a clear error before anything is allocated", async () => {
    const server = await startServerProcess({
      models: { stories: storiesModelPath },
      env: { FREEHOLD_MEMORY_BUDGET: "10MB" },
    });
    try {
      const response = await complete(server, "stories");
      assert.equal(response.status, 500);
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, "insufficient_memory");
      assert.match(
        body.error.message,
        /stories:latest needs about \d+ MiB to load \(weights .*KV cache .*\), more than the memory budget of 10 MiB/,
      );
      assert.deepEqual(await loaded(server), []);
      assert.equal(
        (await fetch(`${server.url}/health`)).status,
        200,
        "a refused model does not make the server unhealthy",
      );
    } finally {
      await server.dispose();
    }
  });
});
