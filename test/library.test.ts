import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type ChatEvent, Freehold, NotFoundError } from "../src/index.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";

describe("freehold embedded as a library", { skip: storiesModelMissing }, () => {
  const home = temporaryDirectory();
  let freehold: Freehold;
  before(async () => {
    freehold = await Freehold.open({ home: home.path });
    await freehold.store.import(storiesModelPath, "stories");
  });
  after(async () => {
    await freehold?.close();
    home.dispose();
  });

  test("completeText gives llama.cpp's continuation, with usage", async () => {
    const answer = await freehold.completeText({
      model: "stories",
      prompt: "Once upon a time",
      maxTokens: 10,
      temperature: 0,
    });
    assert.equal(answer.text, ", there was a little girl named Lily");
    assert.equal(answer.finishReason, "length");
    assert.deepEqual(answer.usage, { promptTokens: 5, completionTokens: 10, cachedTokens: 0 });
  });

  test("streaming is an async iterator of typed events", async () => {
    const types: ChatEvent["type"][] = [];
    let text = "";
    for await (const event of freehold.complete({
      model: "stories",
      prompt: "Once upon a time",
      maxTokens: 10,
      temperature: 0,
    })) {
      types.push(event.type);
      if (event.type === "text-delta") text += event.text;
    }
    assert.equal(text, ", there was a little girl named Lily");
    assert.deepEqual(types.slice(-2), ["usage", "finish"]);
  });

  test("an abort signal stops a stream early", async () => {
    const controller = new AbortController();
    let deltas = 0;
    let finish: string | undefined;
    for await (const event of freehold.complete({
      model: "stories",
      prompt: "Once upon a time",
      maxTokens: 1500,
      ignoreEos: true,
      signal: controller.signal,
    })) {
      if (event.type === "text-delta" && ++deltas === 3) controller.abort();
      if (event.type === "finish") finish = event.reason;
    }
    assert.equal(finish, "cancelled");
    assert.ok(deltas < 100, `stopped after ${deltas} deltas`);
  });

  test("chat, embeddings, and a clear error for an unknown model", async () => {
    const chat = await freehold.chatText({
      model: "stories",
      messages: [{ role: "user", content: "Hi" }],
      maxTokens: 5,
      temperature: 0,
    });
    assert.ok(chat.usage.completionTokens <= 5);
    const embedding = await freehold.embed("stories", ["a girl", "a dog"]);
    assert.equal(embedding.vectors.length, 2);
    assert.equal(embedding.vectors[0]!.length, 64);
    await assert.rejects(
      freehold.completeText({ model: "missing", prompt: "x" }),
      (error: unknown) => error instanceof NotFoundError,
    );
  });

  test("countTokens gives the prompt tokens a request will use, template applied", async () => {
    const messages = [{ role: "user" as const, content: "Once upon a time there was a dog." }];
    const counted = await freehold.gateway.countTokens({
      kind: "chat",
      model: "stories",
      messages,
      sampling: {},
      limits: {},
    });
    const answer = await freehold.chatText({ model: "stories", messages, maxTokens: 1 });
    assert.equal(counted, answer.usage.promptTokens);
    assert.ok(counted > 10);
  });

  test("the HTTP app can be mounted in-process through app.fetch, with no socket", async () => {
    const app = freehold.httpApp();
    const response = await app.request("http://localhost/v1/completions", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "stories", prompt: "Once upon a time", max_tokens: 10, temperature: 0 }),
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { choices: { text: string }[] };
    assert.equal(body.choices[0]!.text, ", there was a little girl named Lily");
  });
});
