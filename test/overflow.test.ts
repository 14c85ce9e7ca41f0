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

  test("Ollama /api/chat: truncate: true cuts the oldest turns, shift: true keeps the end, false (or nothing) is a 400", async () => {
    const ollama = {
      model: "stories",
      messages: longChat(),
      stream: false,
      options: { num_predict: 8, temperature: 0 },
    };
    for (const [fields, policy] of [
      [{ truncate: true }, "truncate-middle"],
      [{ truncate: true, shift: false }, "truncate-middle"],
      [{ shift: true }, "shift"],
    ] as const) {
      const response = await postJson(`${server.url}/api/chat`, { ...ollama, ...fields });
      assert.equal(response.status, 200, `${JSON.stringify(fields)}: ${await response.clone().text()}`);
      const body = (await response.json()) as { freehold_truncation: Truncated; prompt_eval_count: number };
      assert.equal(body.freehold_truncation.policy, policy, JSON.stringify(fields));
      assert.ok(body.freehold_truncation.dropped_tokens > 0);
      assert.equal(body.prompt_eval_count, body.freehold_truncation.kept_tokens);
      assert.match(response.headers.get("x-freehold-truncated") ?? "", new RegExp(`^${policy};`));
    }
    for (const fields of [{}, { truncate: false }, { shift: false }, { truncate: false, shift: true }]) {
      const response = await postJson(`${server.url}/api/chat`, { ...ollama, ...fields });
      assert.equal(response.status, 400, JSON.stringify(fields));
      assert.match(((await response.json()) as { error: string }).error, /truncate: true or shift: true/);
      assert.equal(response.headers.get("x-freehold-truncated"), null);
    }
    // Streamed, the header is on the stream's response.
    const streamed = await postJson(`${server.url}/api/chat`, { ...ollama, stream: true, truncate: true });
    assert.equal(streamed.status, 200);
    assert.match(streamed.headers.get("x-freehold-truncated") ?? "", /^truncate-middle;/);
    await streamed.text();
  });

  test("Ollama /api/generate raw: shift: true (or truncate: true) keeps the prompt's end", async () => {
    const prompt = "Once upon a time there was a dog. ".repeat(40);
    const generate = { model: "stories", prompt, raw: true, stream: false, options: { num_predict: 4 } };
    assert.equal((await postJson(`${server.url}/api/generate`, generate)).status, 400);
    for (const fields of [{ shift: true }, { truncate: true }]) {
      const response = await postJson(`${server.url}/api/generate`, { ...generate, ...fields });
      assert.equal(response.status, 200, JSON.stringify(fields));
      const body = (await response.json()) as { freehold_truncation: Truncated };
      assert.ok(body.freehold_truncation.dropped_tokens > 0);
      assert.equal(body.freehold_truncation.dropped_messages, 0);
    }
  });

  test("Anthropic /v1/messages: truncation (as on OpenAI's API) cuts, says so in the header; unset is a 400", async () => {
    const messages = longChat().filter((message) => message.role !== "system");
    const anthropic = { model: "stories", system: "You tell short stories.", messages, max_tokens: 8, temperature: 0 };
    const plain = await postJson(`${server.url}/v1/messages`, anthropic);
    assert.equal(plain.status, 400);
    const error = ((await plain.json()) as { error: { type: string; message: string } }).error;
    assert.equal(error.type, "invalid_request_error");
    assert.match(error.message, /truncate-middle/);
    for (const policy of ["truncate-middle", "shift"]) {
      const response = await postJson(`${server.url}/v1/messages`, { ...anthropic, truncation: policy });
      assert.equal(response.status, 200, `${policy}: ${await response.clone().text()}`);
      const header = response.headers.get("x-freehold-truncated") ?? "";
      assert.match(header, new RegExp(`^${policy}; prompt_tokens=\\d+; kept_tokens=\\d+; context=256;`));
      const body = (await response.json()) as { usage: { input_tokens: number; cache_read_input_tokens?: number } };
      const kept = Number(/kept_tokens=(\d+)/.exec(header)![1]);
      // Anthropic's input_tokens leaves out the tokens read from the cache.
      const seen = body.usage.input_tokens + (body.usage.cache_read_input_tokens ?? 0);
      assert.equal(seen, kept, "usage counts what the model saw");
    }
    const streamed = await postJson(`${server.url}/v1/messages`, { ...anthropic, stream: true, truncation: "shift" });
    assert.equal(streamed.status, 200);
    assert.match(streamed.headers.get("x-freehold-truncated") ?? "", /^shift;/);
    await streamed.text();
  });

  test("an unknown policy is a 400 naming the field, on every API", async () => {
    for (const [path, body, field] of [
      ["/api/chat", { model: "stories", messages: longChat(), truncate: "yes" }, "truncate"],
      ["/api/chat", { model: "stories", messages: longChat(), shift: 1 }, "shift"],
      ["/api/generate", { model: "stories", prompt: "hi", shift: "on" }, "shift"],
      [
        "/v1/messages",
        { model: "stories", messages: [{ role: "user", content: "hi" }], max_tokens: 4, truncation: "auto" },
        "truncation",
      ],
    ] as const) {
      const response = await postJson(`${server.url}${path}`, body);
      assert.equal(response.status, 400, `${path} ${field}`);
      assert.match(await response.text(), new RegExp(field));
    }
  });

  test("an unknown policy is a 400 naming truncation", async () => {
    const response = await postJson(`${server.url}/v1/chat/completions`, { ...chat, truncation: "drop-all" });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: { param: string } };
    assert.equal(body.error.param, "truncation");
  });
});
