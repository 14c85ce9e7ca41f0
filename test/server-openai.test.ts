import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import * as checks from "./helpers/openaiChecks.js";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

describe("OpenAI-compatible server on stories260K", { skip: storiesModelMissing }, () => {
  let server: ServerProcess;
  let client: OpenAI;
  before(async () => {
    server = await startServerProcess({ models: { stories: storiesModelPath } });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server?.dispose());

  test("GET /health is 200 when ready", async () => {
    const response = await fetch(`${server.url}/health`);
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { status: string }).status, "ok");
  });

  test("completion at temperature 0 continues as llama.cpp does, with exact usage", async () => {
    const completion = await checks.checkTemperatureZero(client);
    assert.equal(completion.object, "text_completion");
    assert.deepEqual(completion.usage, {
      prompt_tokens: 5,
      completion_tokens: 10,
      total_tokens: 15,
      prompt_tokens_details: { cached_tokens: 0 },
    });
  });

  test("streamed text equals non-streamed text (completions and chat)", async () => {
    await checks.checkStreamedCompletion(client);

    const messages = [{ role: "user" as const, content: "Tell me a story." }];
    const chat = await client.chat.completions.create({ model: "stories", messages, max_tokens: 30, temperature: 0 });
    const chatStream = await client.chat.completions.create({
      model: "stories",
      messages,
      max_tokens: 30,
      temperature: 0,
      stream: true,
    });
    let chatStreamed = "";
    for await (const chunk of chatStream) chatStreamed += chunk.choices[0]?.delta.content ?? "";
    assert.equal(chatStreamed, chat.choices[0]!.message.content);
    assert.equal(chat.choices[0]!.message.role, "assistant");
  });

  test("chat streaming wire shape: role first, one id, finish_reason, usage chunk, [DONE]", async () => {
    await checks.checkChatStreamWireShape(server.url);
  });

  test("stop sequences end the answer without leaking any part of them", async () => {
    await checks.checkStopSequences(client);
  });

  test("the same seed gives the same sampled output", async () => {
    const ask = () =>
      client.completions.create({
        model: "stories",
        prompt: "Once upon a time",
        max_tokens: 30,
        temperature: 1,
        seed: 1234,
      });
    const [a, b] = [await ask(), await ask()];
    assert.equal(a.choices[0]!.text, b.choices[0]!.text);
  });

  // The counterpart: a sampler that ignored the seed (a fixed one, or none) passes one of these two tests, never both.
  // 60 tokens at temperature 1 from a 512-token vocabulary: two seeds colliding is practically impossible.
  test("different seeds give different sampled output, each repeatable", async () => {
    const ask = async (seed: number) => {
      const response = await postJson(`${server.url}/v1/completions`, {
        model: "stories",
        prompt: "Once upon a time",
        max_tokens: 60,
        temperature: 1,
        ignore_eos: true,
        seed,
      });
      const body = (await response.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
      assert.equal(body.usage.completion_tokens, 60);
      return body.choices[0]!.text;
    };
    const seeds = [1, 2, 3];
    const texts: string[] = [];
    for (const seed of seeds) texts.push(await ask(seed));
    assert.equal(new Set(texts).size, seeds.length, `seeds ${seeds.join(", ")} answered ${JSON.stringify(texts)}`);
    assert.equal(await ask(seeds[0]!), texts[0], "a seed asked again after others gives its own output again");
  });

  test("ignore_eos keeps generating to max_tokens", async () => {
    const completion = await postJson(`${server.url}/v1/completions`, {
      model: "stories",
      prompt: "Once upon a time",
      max_tokens: 300,
      temperature: 0,
      ignore_eos: true,
    });
    const body = (await completion.json()) as {
      usage: { completion_tokens: number };
      choices: { finish_reason: string }[];
    };
    assert.equal(body.usage.completion_tokens, 300);
    assert.equal(body.choices[0]!.finish_reason, "length");
  });

  test("embeddings: string and array input, float and base64, normalised", async () => {
    const single = await client.embeddings.create({
      model: "stories",
      input: "a little girl",
      encoding_format: "float",
    });
    assert.equal(single.data.length, 1);
    const vector = single.data[0]!.embedding;
    assert.equal(vector.length, 64);
    const norm = Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0));
    assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
    const many = await postJson(`${server.url}/v1/embeddings`, {
      model: "stories",
      input: ["a little girl", "a big dog"],
      encoding_format: "base64",
    });
    const body = (await many.json()) as {
      data: { index: number; embedding: string }[];
      usage: { prompt_tokens: number };
    };
    assert.equal(body.data.length, 2);
    const bytes = Buffer.from(body.data[0]!.embedding, "base64");
    const decoded = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
    assert.equal(decoded.length, 64);
    assert.ok(Math.abs(decoded[0]! - vector[0]!) < 1e-5);
    // BOS + 5 tokens ("a little girl"), BOS + 4 ("a big dog").
    assert.equal(body.usage.prompt_tokens, 11);
  });

  test("models list and retrieve", async () => {
    const list = await client.models.list();
    assert.deepEqual(
      list.data.map((m) => m.id),
      ["stories:latest"],
    );
    const model = await client.models.retrieve("stories:latest");
    assert.equal(model.id, "stories:latest");
    assert.equal(model.owned_by, "freehold");
    await assert.rejects(client.models.retrieve("nope"), (error: unknown) => error instanceof OpenAI.NotFoundError);
  });

  test("unknown model is 404 model_not_found", async () => {
    const response = await postJson(`${server.url}/v1/chat/completions`, {
      model: "nope",
      messages: [{ role: "user", content: "x" }],
    });
    assert.equal(response.status, 404);
    const body = (await response.json()) as { error: { code: string; type: string; message: string } };
    assert.equal(body.error.code, "model_not_found");
    assert.match(body.error.message, /nope/);
  });

  test("prompt longer than the context is 400 context_length_exceeded, also with stream: true", async () => {
    const prompt = "Once upon a time ".repeat(800);
    for (const stream of [false, true]) {
      const response = await postJson(`${server.url}/v1/completions`, { model: "stories", prompt, stream });
      assert.equal(response.status, 400);
      assert.match(response.headers.get("content-type") ?? "", /application\/json/);
      const body = (await response.json()) as { error: { code: string; message: string } };
      assert.equal(body.error.code, "context_length_exceeded");
      assert.match(body.error.message, /context is 2048 tokens/);
    }
  });

  test("a generation that reaches the end of the context stops with finish_reason length", async () => {
    // About 2,030 prompt tokens in a 2,048-token context: the answer runs out of room long before max_tokens.
    const prompt = "Once upon a time ".repeat(507);
    const response = await postJson(`${server.url}/v1/completions`, {
      model: "stories",
      prompt,
      max_tokens: 500,
      ignore_eos: true,
      temperature: 0,
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      choices: { finish_reason: string }[];
      usage: { prompt_tokens: number; completion_tokens: number };
    };
    assert.equal(body.choices[0]!.finish_reason, "length");
    assert.ok(body.usage.prompt_tokens < 2048);
    assert.equal(body.usage.prompt_tokens + body.usage.completion_tokens, 2048);
  });

  test("a body over the size limit is 413", async () => {
    const response = await postJson(`${server.url}/v1/chat/completions`, {
      model: "stories",
      messages: [{ role: "user", content: "x".repeat(9 * 1024 * 1024) }],
    });
    assert.equal(response.status, 413);
    const body = (await response.json()) as { error: { code: string } };
    assert.equal(body.error.code, "request_too_large");
    // Chunked (no Content-Length): counted as it arrives; a small chunked body is served as usual.
    const chunked = (text: string) => {
      const bytes = new TextEncoder().encode(text);
      return fetch(`${server.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: new ReadableStream({
          start(controller) {
            for (let at = 0; at < bytes.length; at += 65_536) controller.enqueue(bytes.subarray(at, at + 65_536));
            controller.close();
          },
        }),
        duplex: "half",
      } as RequestInit);
    };
    const big = JSON.stringify({
      model: "stories",
      messages: [{ role: "user", content: "x".repeat(9 * 1024 * 1024) }],
    });
    const refused = await chunked(big);
    assert.equal(refused.status, 413);
    assert.equal(((await refused.json()) as { error: { code: string } }).error.code, "request_too_large");
    const small = JSON.stringify({ model: "stories", messages: [{ role: "user", content: "Hi" }], max_tokens: 2 });
    assert.equal((await chunked(small)).status, 200);
  });

  test("a Host header that is not ours is refused (DNS rebinding)", async () => {
    const { request } = await import("node:http");
    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${server.url}/v1/models`);
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, headers: { host: "attacker.example:11435" } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on("error", reject);
      req.end();
    });
    assert.equal(status, 403);
  });

  test("no CORS headers by default", async () => {
    const response = await fetch(`${server.url}/v1/models`, { headers: { origin: "https://example.com" } });
    assert.equal(response.headers.get("access-control-allow-origin"), null);
  });

  describe("bad input: 400 naming the field, in OpenAI's error shape", () => {
    const chat = { model: "stories", messages: [{ role: "user", content: "hi" }] };
    const cases: [string, string, Record<string, unknown> | string, string | null][] = [
      ["malformed JSON", "/v1/chat/completions", "{not json", null],
      ["body not an object", "/v1/chat/completions", "[1,2]", null],
      ["missing model", "/v1/chat/completions", { messages: chat.messages }, "model"],
      ["model not a string", "/v1/chat/completions", { ...chat, model: 5 }, "model"],
      ["missing messages", "/v1/chat/completions", { model: "stories" }, "messages"],
      ["empty messages", "/v1/chat/completions", { ...chat, messages: [] }, "messages"],
      [
        "bad role",
        "/v1/chat/completions",
        { ...chat, messages: [{ role: "wizard", content: "x" }] },
        "messages[0].role",
      ],
      [
        "content wrong type",
        "/v1/chat/completions",
        { ...chat, messages: [{ role: "user", content: 42 }] },
        "messages[0].content",
      ],
      ["temperature a string", "/v1/chat/completions", { ...chat, temperature: "hot" }, "temperature"],
      ["temperature negative", "/v1/chat/completions", { ...chat, temperature: -1 }, "temperature"],
      ["temperature too high", "/v1/chat/completions", { ...chat, temperature: 3 }, "temperature"],
      ["top_p above 1", "/v1/chat/completions", { ...chat, top_p: 1.5 }, "top_p"],
      ["top_k fractional", "/v1/chat/completions", { ...chat, top_k: 2.5 }, "top_k"],
      ["min_p negative", "/v1/chat/completions", { ...chat, min_p: -0.1 }, "min_p"],
      ["max_tokens zero", "/v1/chat/completions", { ...chat, max_tokens: 0 }, "max_tokens"],
      ["max_tokens absurd", "/v1/chat/completions", { ...chat, max_tokens: 1e12 }, "max_tokens"],
      ["max_tokens fractional", "/v1/chat/completions", { ...chat, max_tokens: 1.5 }, "max_tokens"],
      ["presence_penalty out of range", "/v1/chat/completions", { ...chat, presence_penalty: 5 }, "presence_penalty"],
      [
        "frequency_penalty out of range",
        "/v1/chat/completions",
        { ...chat, frequency_penalty: -5 },
        "frequency_penalty",
      ],
      ["seed fractional", "/v1/chat/completions", { ...chat, seed: 0.5 }, "seed"],
      ["stop wrong type", "/v1/chat/completions", { ...chat, stop: 7 }, "stop"],
      ["n above 1", "/v1/chat/completions", { ...chat, n: 2 }, "n"],
      ["stream not a boolean", "/v1/chat/completions", { ...chat, stream: "yes" }, "stream"],
      [
        "tool name with spaces",
        "/v1/chat/completions",
        { ...chat, tools: [{ type: "function", function: { name: "get weather" } }] },
        "tools[0].function.name",
      ],
      [
        "tool_choice naming an unknown tool",
        "/v1/chat/completions",
        {
          ...chat,
          tools: [{ type: "function", function: { name: "f" } }],
          tool_choice: { type: "function", function: { name: "g" } },
        },
        "tool_choice",
      ],
      [
        "tool parameters the grammar cannot enforce",
        "/v1/chat/completions",
        {
          ...chat,
          tools: [
            {
              type: "function",
              function: {
                name: "f",
                parameters: { type: "object", properties: { n: { type: "number", minimum: 0 } } },
              },
            },
          ],
        },
        "tools[0].function.parameters",
      ],
      ["logit_bias value above 100", "/v1/chat/completions", { ...chat, logit_bias: { "5": 101 } }, "logit_bias"],
      ["functions not supported", "/v1/chat/completions", { ...chat, functions: [{ name: "f" }] }, "functions"],
      ["stop string too long", "/v1/chat/completions", { ...chat, stop: "x".repeat(2000) }, "stop"],
      [
        "response_format unknown type",
        "/v1/chat/completions",
        { ...chat, response_format: { type: "xml" } },
        "response_format",
      ],
      ["completion prompt missing", "/v1/completions", { model: "stories" }, "prompt"],
      ["completion prompt number", "/v1/completions", { model: "stories", prompt: 5 }, "prompt"],
      ["completion token id negative", "/v1/completions", { model: "stories", prompt: [1, -5] }, "prompt"],
      ["completion echo", "/v1/completions", { model: "stories", prompt: "x", echo: true }, "echo"],
      ["embedding input missing", "/v1/embeddings", { model: "stories" }, "input"],
      ["embedding input empty string", "/v1/embeddings", { model: "stories", input: "" }, "input"],
      [
        "embedding bad encoding",
        "/v1/embeddings",
        { model: "stories", input: "x", encoding_format: "hex" },
        "encoding_format",
      ],
    ];
    for (const [name, path, body, param] of cases) {
      test(name, async () => {
        const response = await postJson(`${server.url}${path}`, body);
        assert.equal(response.status, 400, name);
        const json = (await response.json()) as {
          error: { message: string; type: string; param: string | null; code: string };
        };
        assert.equal(json.error.type, "invalid_request_error");
        assert.equal(typeof json.error.message, "string");
        assert.ok(json.error.message.length > 10);
        if (param !== null) {
          assert.ok(json.error.param?.startsWith(param), `param ${json.error.param} should name ${param}`);
          assert.ok(json.error.message.includes(param), `message "${json.error.message}" should name ${param}`);
        }
      });
    }

    test("token id out of the vocabulary never reaches native code", async () => {
      const response = await postJson(`${server.url}/v1/completions`, { model: "stories", prompt: [1, 99999] });
      assert.equal(response.status, 400);
      const json = (await response.json()) as { error: { code: string; param: string } };
      assert.equal(json.error.code, "invalid_token");
    });

    test("the server is still healthy after all of that", async () => {
      await checks.completeLily(client);
    });
  });

  test("100 clients that disconnect mid-stream leave the sequence free within a second", async () => {
    await checks.checkDisconnectsFreeSlots(server.url, client, { clients: 100, withinMs: 1000 });
  });

  test("a runner killed with SIGKILL mid-stream: the client gets an error, the next request succeeds", async () => {
    const { rest, runner } = await checks.checkCrashMidStream(server.url, client, (pid) => pid);
    assert.match(rest, /"error":\{"message":"the model runner stopped unexpectedly \(signal SIGKILL\)/);
    assert.equal(runner.restarts, 0, "the first crash: after it, restarts is 1");
  });
});
