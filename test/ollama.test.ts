import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";
import { OLLAMA_API_LEVEL } from "../src/http/ollama/routes.js";
import { VERSION } from "../src/version.js";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

const LILY = ", there was a little girl named Lily";

describe("Ollama's native API, driven by the official ollama client", { skip: storiesModelMissing }, () => {
  let server: ServerProcess;
  let ollama: Ollama;
  before(async () => {
    server = await startServerProcess({ models: { stories: storiesModelPath } });
    ollama = new Ollama({ host: server.url });
  });
  after(() => server?.dispose());

  test("GET / and HEAD / say the server is running; /api/version answers", async () => {
    const root = await fetch(`${server.url}/`);
    assert.equal(root.status, 200);
    assert.equal(await root.text(), "freehold is running");
    assert.equal((await fetch(`${server.url}/`, { method: "HEAD" })).status, 200);
    const { version } = await ollama.version();
    // The Ollama API level (clients gate on it; one needs >= 0.6.4), not freehold's own 0.x version.
    assert.equal(version, OLLAMA_API_LEVEL);
    const raw = await fetch(`${server.url}/api/version`);
    assert.deepEqual(await raw.json(), { version: OLLAMA_API_LEVEL, freehold: VERSION });
    assert.equal(raw.headers.get("x-freehold-version"), VERSION);
  });

  test("generate with raw: the model's own continuation, non-streamed, with Ollama's statistics", async () => {
    const answer = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      stream: false,
      options: { temperature: 0, num_predict: 10 },
    });
    assert.equal(answer.response, LILY);
    assert.equal(answer.done, true);
    assert.equal(answer.done_reason, "length");
    assert.equal(answer.eval_count, 10);
    assert.equal(answer.prompt_eval_count, 5);
    assert.ok(
      answer.total_duration > 0 && Number.isInteger(answer.total_duration),
      "durations are integer nanoseconds",
    );
    assert.ok(answer.eval_duration > 0);
    assert.equal(answer.model, "stories");
  });

  test("generate streams NDJSON by default; the pieces join to the non-streamed text", async () => {
    const response = await postJson(`${server.url}/api/generate`, {
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      options: { temperature: 0, num_predict: 10 },
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /application\/x-ndjson/);
    const lines = (await response.text())
      .trim()
      .split("\n")
      .map(
        (line) => JSON.parse(line) as { response: string; done: boolean; done_reason?: string; eval_count?: number },
      );
    assert.equal(lines.map((line) => line.response).join(""), LILY);
    assert.equal(lines.at(-1)!.done, true);
    assert.equal(lines.at(-1)!.eval_count, 10);
    for (const line of lines.slice(0, -1)) assert.equal(line.done, false);

    let streamed = "";
    for await (const part of await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      stream: true,
      options: { temperature: 0, num_predict: 10 },
    })) {
      streamed += part.response;
    }
    assert.equal(streamed, LILY);
  });

  test("chat, streamed and not, gives the same answer; stop sequences apply", async () => {
    const messages = [{ role: "user", content: "Tell me a story." }];
    const whole = await ollama.chat({
      model: "stories",
      messages,
      stream: false,
      options: { temperature: 0, num_predict: 20 },
    });
    assert.equal(whole.message.role, "assistant");
    let streamed = "";
    for await (const part of await ollama.chat({
      model: "stories",
      messages,
      stream: true,
      options: { temperature: 0, num_predict: 20 },
    })) {
      streamed += part.message.content;
    }
    assert.equal(streamed, whole.message.content);
    const stopped = await ollama.generate({
      model: "stories",
      prompt: "Once upon a time",
      raw: true,
      stream: false,
      options: { temperature: 0, num_predict: 30, stop: ["Lily"] },
    });
    assert.equal(stopped.response, ", there was a little girl named ");
    assert.equal(stopped.done_reason, "stop");
  });

  test("embed and the older embeddings endpoint", async () => {
    const embed = await ollama.embed({ model: "stories", input: ["a girl", "a dog"] });
    assert.equal(embed.embeddings.length, 2);
    assert.equal(embed.embeddings[0]!.length, 64);
    const old = await ollama.embeddings({ model: "stories", prompt: "a girl" });
    assert.equal(old.embedding.length, 64);
    assert.ok(Math.abs(old.embedding[0]! - embed.embeddings[0]![0]!) < 1e-6);
  });

  test("tags, show, copy, delete, ps", async () => {
    const tags = await ollama.list();
    const stories = tags.models.find((m) => m.name === "stories:latest");
    assert.ok(stories);
    assert.equal(stories.details.format, "gguf");
    assert.equal(stories.details.family, "llama");
    assert.equal(stories.details.quantization_level, "F32");
    assert.match(stories.digest, /^[0-9a-f]{64}$/);
    const shown = await ollama.show({ model: "stories" });
    assert.equal(shown.details.parameter_size, "292.8K");
    assert.equal((shown.model_info as unknown as Record<string, unknown>)["llama.context_length"], 2048);
    await ollama.copy({ source: "stories", destination: "stories-copy" });
    assert.ok((await ollama.list()).models.some((m) => m.name === "stories-copy:latest"));
    await ollama.delete({ model: "stories-copy" });
    assert.ok(!(await ollama.list()).models.some((m) => m.name === "stories-copy:latest"));
    const ps = await ollama.ps();
    assert.ok(ps.models.some((m) => m.name === "stories:latest"));
  });

  test("an empty prompt loads the model; keep_alive 0 unloads it", async () => {
    const unloaded = await postJson(`${server.url}/api/generate`, { model: "stories", keep_alive: 0 });
    assert.equal(((await unloaded.json()) as { done_reason: string }).done_reason, "unload");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await ollama.ps()).models.length, 0);
    const loaded = await postJson(`${server.url}/api/generate`, { model: "stories" });
    assert.equal(((await loaded.json()) as { done_reason: string }).done_reason, "load");
    assert.equal((await ollama.ps()).models.length, 1);
  });

  test("errors in Ollama's shape", async () => {
    const missing = await postJson(`${server.url}/api/chat`, {
      model: "nope",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(missing.status, 404);
    assert.deepEqual(await missing.json(), { error: 'model "nope" not found, try pulling it first' });
    await assert.rejects(
      ollama.chat({ model: "nope", messages: [{ role: "user", content: "hi" }] }),
      /model "nope" not found/,
    );
    for (const [body, field] of [
      [{ model: "stories", prompt: "x", options: { temperature: "hot" } }, "options.temperature"],
      [{ model: "stories", prompt: "x", options: { num_predict: 1.5 } }, "options.num_predict"],
      [{ prompt: "x" }, "model"],
      [{ model: "stories", prompt: "x", format: "yaml" }, "format"],
      [{ model: "stories", prompt: "x", format: { type: "string", pattern: "a" } }, "format"],
      [{ model: "stories", prompt: "x", template: "{{ .Prompt }}" }, "template"],
      [{ model: "stories", prompt: "x", suffix: "end" }, "suffix"],
    ] as const) {
      const response = await postJson(`${server.url}/api/generate`, body);
      assert.equal(response.status, 400, JSON.stringify(body));
      const error = (await response.json()) as { error: string };
      assert.equal(typeof error.error, "string");
      assert.ok(error.error.includes(field), `"${error.error}" names ${field}`);
    }
    const malformed = await postJson(`${server.url}/api/chat`, "{nope");
    assert.equal(malformed.status, 400);
    assert.match(((await malformed.json()) as { error: string }).error, /not valid JSON/);
    const pull = await postJson(`${server.url}/api/pull`, { model: "llama3" });
    assert.equal(pull.status, 501);
    assert.match(((await pull.json()) as { error: string }).error, /freehold import/);
    const deleteMissing = await fetch(`${server.url}/api/delete`, {
      method: "DELETE",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "nope" }),
    });
    assert.equal(deleteMissing.status, 404);
  });
});
