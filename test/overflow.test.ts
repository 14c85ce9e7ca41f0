import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

interface Truncated {
  policy: string;
  prompt_tokens: number;
  kept_tokens: number;
  context_window: number;
  dropped_messages: number;
  dropped_tokens: number;
}

/** A conversation far longer than a 256-token context: a system message, ten long turns, a last question. */
function longChat() {
  const filler = "The little dog ran to the park and played with a big red ball all day long. ";
  const turns = Array.from({ length: 10 }, (_, i) => ({
    role: i % 2 === 0 ? "user" : "assistant",
    content: `${i}: ${filler.repeat(3)}`,
  }));
  return [
    { role: "system", content: "You tell short stories." },
    ...turns,
    { role: "user", content: "Once upon a time" },
  ];
}

describe("no silent truncation: the overflow policy (stories260K, a 256-token context)", {
  skip: storiesModelMissing,
}, () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess({
      models: { stories: storiesModelPath },
      env: { FREEHOLD_CONTEXT_SIZE: "256" },
    });
  });
  after(async () => {
    await server?.dispose();
  });

  const chat = { model: "stories", messages: longChat(), max_tokens: 8, temperature: 0 };

  test("by default a prompt past the context is a 400 context_length_exceeded that names the way out", async () => {
    const response = await postJson(`${server.url}/v1/chat/completions`, chat);
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "context_length_exceeded");
    assert.match(body.error.message, /truncate-middle/);
    assert.equal(response.headers.get("x-freehold-truncated"), null);
  });

  test("truncate-middle: the oldest turns go, the system message and last turn stay; header and field say so", async () => {
    const response = await postJson(`${server.url}/v1/chat/completions`, { ...chat, truncation: "truncate-middle" });
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      choices: { message: { content: string } }[];
      usage: { prompt_tokens: number };
      freehold_truncation: Truncated;
    };
    const t = body.freehold_truncation;
    assert.equal(t.policy, "truncate-middle");
    assert.equal(t.context_window, 256);
    assert.ok(t.dropped_messages > 0 && t.dropped_messages <= 10, `dropped ${t.dropped_messages} of the 10 turns`);
    assert.ok(t.prompt_tokens > 256, "the prompt as sent did not fit");
    assert.equal(t.kept_tokens + t.dropped_tokens, t.prompt_tokens);
    assert.ok(t.kept_tokens <= 256 - 8, "room is left for max_tokens");
    assert.equal(body.usage.prompt_tokens, t.kept_tokens, "usage counts what the model saw");
    assert.ok(body.choices[0]!.message.content.length > 0);
    const header = response.headers.get("x-freehold-truncated") ?? "";
    assert.match(header, /^truncate-middle; prompt_tokens=\d+; kept_tokens=\d+; context=256; dropped_messages=\d+/);
  });

  test("truncate-middle streamed: the header is on the stream's response", async () => {
    const response = await postJson(`${server.url}/v1/chat/completions`, {
      ...chat,
      stream: true,
      truncation: "truncate-middle",
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("x-freehold-truncated") ?? "", /^truncate-middle;/);
    await response.text();
  });

  test("shift on a completion keeps the prompt's end; header and field say how much was dropped", async () => {
    const prompt = "Once upon a time there was a dog. ".repeat(40);
    const plain = await postJson(`${server.url}/v1/completions`, { model: "stories", prompt, max_tokens: 4 });
    assert.equal(plain.status, 400);
    const response = await postJson(`${server.url}/v1/completions`, {
      model: "stories",
      prompt,
      max_tokens: 4,
      truncation: "shift",
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { freehold_truncation: Truncated };
    assert.equal(body.freehold_truncation.policy, "shift");
    assert.ok(body.freehold_truncation.dropped_tokens > 0);
    assert.equal(body.freehold_truncation.dropped_messages, 0);
    assert.match(response.headers.get("x-freehold-truncated") ?? "", /^shift;/);
  });

  test("a system message and last turn that alone do not fit: still a 400, nothing silently cut", async () => {
    const response = await postJson(`${server.url}/v1/chat/completions`, {
      model: "stories",
      messages: [{ role: "user", content: "A dog ran. ".repeat(200) }],
      truncation: "truncate-middle",
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "context_length_exceeded");
    assert.match(body.error.message, /even with only its system messages and last turn/);
  });

  test("an unknown policy is a 400 naming truncation", async () => {
    const response = await postJson(`${server.url}/v1/chat/completions`, { ...chat, truncation: "drop-all" });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { param: string } };
    assert.equal(body.error.param, "truncation");
  });
});
