import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

interface PsModel {
  name: string;
  context_length: number;
  details: { threads: number; threads_when_busy: number; gpu_layers: number; backend: string };
}

describe("Ollama's num_ctx, num_thread, num_gpu apply per request", { skip: storiesModelMissing }, () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess({ models: { stories: storiesModelPath } });
  });
  after(async () => {
    await server?.dispose();
  });

  const generate = (options: Record<string, unknown>, prompt = "Once upon a time") =>
    postJson(`${server.url}/api/generate`, {
      model: "stories",
      prompt,
      raw: true,
      stream: false,
      options: { temperature: 0, num_predict: 10, ...options },
    });
  const loaded = async (): Promise<PsModel> => {
    const ps = (await (await fetch(`${server.url}/api/ps`)).json()) as { models: PsModel[] };
    assert.equal(ps.models.length, 1);
    return ps.models[0]!;
  };
  const pid = async () => {
    const health = (await (await fetch(`${server.url}/health`)).json()) as { models: { pid: number }[] };
    return health.models[0]!.pid;
  };

  test("num_ctx loads the model with that context; a prompt past it is a 400 that says so", async () => {
    // llama.cpp pads a context to a multiple of 256 tokens: asking for one keeps the numbers exact.
    const answer = await generate({ num_ctx: 256 });
    assert.equal(answer.status, 200);
    assert.equal(((await answer.json()) as { response: string }).response, ", there was a little girl named Lily");
    assert.equal((await loaded()).context_length, 256);
    const long = await generate({ num_ctx: 256 }, "Once upon a time ".repeat(80));
    assert.equal(long.status, 400);
    assert.match(((await long.json()) as { error: string }).error, /context is 256 tokens/);
  });

  test("a request that leaves the options out uses the model as loaded (no reload)", async () => {
    const before = await pid();
    assert.equal((await generate({})).status, 200);
    assert.equal(await pid(), before);
    assert.equal((await loaded()).context_length, 256);
  });

  test("a different num_ctx or num_thread reloads the model; the same one does not", async () => {
    const first = await pid();
    assert.equal((await generate({ num_ctx: 512 })).status, 200);
    const second = await pid();
    assert.notEqual(second, first);
    assert.equal((await loaded()).context_length, 512);
    assert.equal((await generate({ num_ctx: 512 })).status, 200);
    assert.equal(await pid(), second);
    assert.equal((await generate({ num_thread: 2 })).status, 200);
    const model = await loaded();
    assert.equal(model.details.threads, 2);
    assert.equal(model.details.threads_when_busy, 2, "a thread count set by hand holds under load too");
    assert.equal(model.context_length, 512, "options left out keep what the model had");
    assert.equal((await generate({ num_gpu: 0 })).status, 200);
    assert.equal((await loaded()).details.gpu_layers, 0);
  });

  test("a reload waits for running requests to finish; they are not cut off", async () => {
    const running = postJson(`${server.url}/api/generate`, {
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      stream: false,
      options: { temperature: 0, num_predict: 200, ignore_eos: true },
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const reloading = generate({ num_ctx: 256 });
    const [first, second] = await Promise.all([running, reloading]);
    assert.equal(first.status, 200);
    const body = (await first.json()) as { done_reason: string; eval_count: number };
    assert.ok(body.eval_count > 10, `the running answer finished (${body.eval_count} tokens)`);
    assert.equal(second.status, 200);
    assert.equal((await loaded()).context_length, 256);
  });

  test("out-of-range options are 400s naming them", async () => {
    for (const options of [{ num_ctx: 10 }, { num_thread: -1 }, { num_gpu: -2 }, { num_ctx: 1.5 }]) {
      const response = await generate(options);
      assert.equal(response.status, 400, JSON.stringify(options));
      const key = Object.keys(options)[0]!;
      assert.match(((await response.json()) as { error: string }).error, new RegExp(key));
    }
  });
});
