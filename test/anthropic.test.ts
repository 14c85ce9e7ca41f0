import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import type { ChatEvent, ModelPort } from "../src/core/chat.js";
import { OverloadedError } from "../src/core/errors.js";
import { Gateway } from "../src/gateway/gateway.js";
import { registerAnthropicRoutes } from "../src/http/anthropic/routes.js";
import { apiRoutesApp, postJsonTo } from "./helpers/inProcessApp.js";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

/** The SDK's types leave out the sampling fields the API takes; the client sends them as they are. */
type CreateParams = Anthropic.MessageCreateParamsNonStreaming & {
  temperature?: number;
  top_p?: number;
  top_k?: number;
};

interface StreamEvent {
  event: string;
  data: Record<string, unknown> & { type: string };
}

/** Reads an SSE body of named events (`event:` then `data:`), checking every frame has both. */
async function readEvents(response: Response): Promise<StreamEvent[]> {
  const text = await response.text();
  return text
    .split("\n\n")
    .filter((frame) => frame.trim())
    .map((frame) => {
      const match = /^event: (\S+)\ndata: (.+)$/.exec(frame);
      assert.ok(match, `not a named SSE event: ${JSON.stringify(frame)}`);
      return { event: match[1]!, data: JSON.parse(match[2]!) };
    });
}

function assertAnthropicError(body: unknown, type: string, mentions?: string): void {
  const error = body as { type: string; error: { type: string; message: string } };
  assert.deepEqual(Object.keys(error), ["type", "error"]);
  assert.equal(error.type, "error");
  assert.deepEqual(Object.keys(error.error), ["type", "message"]);
  assert.equal(error.error.type, type);
  assert.ok(error.error.message.length > 10, "the message says what was wrong");
  if (mentions) assert.ok(error.error.message.includes(mentions), `"${error.error.message}" names ${mentions}`);
}

const weatherTool = {
  name: "get_weather",
  description: "Current weather for a city",
  input_schema: {
    type: "object" as const,
    properties: { city: { type: "string", enum: ["Oslo", "Lima", "Pune"] }, celsius: { type: "boolean" } },
    required: ["city", "celsius"],
    additionalProperties: false,
  },
};

describe("Anthropic Messages API on stories260K, with the official client", { skip: storiesModelMissing }, () => {
  let server: ServerProcess;
  let client: Anthropic;
  const create = (params: CreateParams) => client.messages.create(params);
  const story = (maxTokens: number): CreateParams => ({
    model: "stories",
    max_tokens: maxTokens,
    temperature: 0,
    messages: [{ role: "user", content: "Once upon a time" }],
  });
  const count = (params: Anthropic.MessageCountTokensParams) =>
    client.messages.countTokens(params).then((counted) => counted.input_tokens);

  before(async () => {
    server = await startServerProcess({ models: { stories: storiesModelPath } });
    client = new Anthropic({ baseURL: server.url, apiKey: "unused", maxRetries: 0 });
  });
  after(() => server?.dispose());

  test("models: list (paged) and retrieve in Anthropic's shape; OpenAI clients still get theirs", async () => {
    for (const destination of ["stories-b", "stories-c"]) {
      const copied = await postJson(`${server.url}/api/copy`, { source: "stories", destination });
      assert.equal(copied.status, 200);
    }
    try {
      const ids: string[] = [];
      for await (const model of client.models.list({ limit: 2 })) {
        assert.equal(model.type, "model");
        assert.ok(!Number.isNaN(Date.parse(model.created_at)));
        assert.equal(model.max_input_tokens, 2048, "the context stories260K was trained with");
        ids.push(model.id);
      }
      assert.deepEqual([...ids].sort(), ["stories-b:latest", "stories-c:latest", "stories:latest"]);
      const first = await client.models.list({ limit: 2 });
      assert.equal(first.data.length, 2);
      assert.equal(first.has_more, true);
      const retrieved = await client.models.retrieve("stories");
      assert.equal(retrieved.id, "stories:latest");
      await assert.rejects(client.models.retrieve("nope"), (error: unknown) => {
        assert.ok(error instanceof Anthropic.NotFoundError);
        assert.equal((error.error as { type: string }).type, "error");
        return true;
      });
      const openai = (await (await fetch(`${server.url}/v1/models`)).json()) as { object: string };
      assert.equal(openai.object, "list");
    } finally {
      for (const name of ["stories-b", "stories-c"])
        await fetch(`${server.url}/api/delete`, {
          method: "DELETE",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: name }),
        });
    }
  });

  test("a message: one text block, stop_reason max_tokens, usage that adds up", async () => {
    const message = await create(story(20));
    assert.match(message.id, /^msg_[0-9a-f]{24}$/);
    assert.equal(message.type, "message");
    assert.equal(message.role, "assistant");
    assert.equal(message.model, "stories");
    assert.equal(message.content.length, 1);
    const block = message.content[0]!;
    assert.equal(block.type, "text");
    assert.ok(block.type === "text" && block.text.length > 0);
    assert.equal(message.stop_reason, "max_tokens");
    assert.equal(message.stop_sequence, null);
    assert.equal(message.usage.output_tokens, 20);
    assert.equal(message.usage.cache_creation_input_tokens, 0);
    const prompt = message.usage.input_tokens + message.usage.cache_read_input_tokens!;
    assert.equal(prompt, await count({ model: "stories", messages: story(20).messages }));
    assert.ok(prompt > 5, "the prompt is the rendered conversation, not just the user's words");

    // The exact wire shape, field by field.
    const response = await postJson(`${server.url}/v1/messages`, story(3));
    assert.equal(response.status, 200);
    const body = (await response.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), [
      "id",
      "type",
      "role",
      "model",
      "content",
      "stop_reason",
      "stop_sequence",
      "stop_details",
      "usage",
    ]);
    assert.deepEqual(Object.keys(body.usage as object), [
      "input_tokens",
      "cache_creation_input_tokens",
      "cache_read_input_tokens",
      "output_tokens",
    ]);
  });

  test("a follow-up with the same prompt reads it from the cache: input_tokens + cache_read_input_tokens stay the whole prompt", async () => {
    const first = await create(story(4));
    const second = await create(story(4));
    assert.ok(second.usage.cache_read_input_tokens! > 0, "the second request reuses the cached prompt");
    assert.equal(
      second.usage.input_tokens + second.usage.cache_read_input_tokens!,
      first.usage.input_tokens + first.usage.cache_read_input_tokens!,
    );
  });

  test("streaming: the exact event sequence, and the SDK's final message equals the non-streamed one", async () => {
    const response = await postJson(`${server.url}/v1/messages`, { ...story(12), stream: true });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    const events = await readEvents(response);
    for (const { event, data } of events) assert.equal(data.type, event, "each event's data names its type");
    const names = events.map((e) => e.event);
    const deltas = names.filter((name) => name === "content_block_delta").length;
    assert.ok(deltas > 0);
    assert.deepEqual(names, [
      "message_start",
      "content_block_start",
      "ping",
      ...Array<string>(deltas).fill("content_block_delta"),
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);

    const start = events[0]!.data.message as Anthropic.Message;
    assert.match(start.id, /^msg_[0-9a-f]{24}$/);
    assert.deepEqual(start.content, []);
    assert.equal(start.stop_reason, null);
    assert.equal(start.usage.output_tokens, 0);
    const prompt = await count({ model: "stories", messages: story(12).messages });
    assert.equal(start.usage.input_tokens, prompt, "message_start carries the prompt's tokens");
    assert.deepEqual(events[1]!.data, {
      type: "content_block_start",
      index: 0,
      content_block: { type: "text", text: "" },
    });
    for (const delta of events.filter((e) => e.event === "content_block_delta")) {
      assert.equal(delta.data.index, 0);
      assert.equal((delta.data.delta as { type: string }).type, "text_delta");
    }
    assert.deepEqual(events.at(-3)!.data, { type: "content_block_stop", index: 0 });
    const closing = events.at(-2)!.data as unknown as Anthropic.RawMessageDeltaEvent;
    assert.equal(closing.delta.stop_reason, "max_tokens");
    assert.equal(closing.delta.stop_sequence, null);
    assert.equal(closing.usage.output_tokens, 12);
    assert.equal(closing.usage.input_tokens! + closing.usage.cache_read_input_tokens!, prompt);

    const streamedText = events
      .filter((e) => e.event === "content_block_delta")
      .map((e) => (e.data.delta as { text: string }).text)
      .join("");
    const whole = await create(story(12));
    // parsed_output is the SDK's own (client-side) parse of output_config.format, not part of the wire message.
    const { parsed_output: _parsed, ...final } = await client.messages.stream(story(12)).finalMessage();
    assert.deepEqual(whole.content, [{ type: "text", text: streamedText }]);
    const comparable = ({ id: _id, usage, ...rest }: Anthropic.Message) => ({
      ...rest,
      output_tokens: usage.output_tokens,
      prompt_tokens: usage.input_tokens + usage.cache_read_input_tokens!,
    });
    assert.deepEqual(comparable(final), comparable(whole));
  });

  test("system as a string, as text blocks and as a system message: the same prompt", async () => {
    const messages: Anthropic.MessageParam[] = [{ role: "user", content: "Tell me a story." }];
    const asString = await count({ model: "stories", system: "You tell stories.\nShort ones.", messages });
    const asBlocks = await count({
      model: "stories",
      system: [
        { type: "text", text: "You tell stories." },
        { type: "text", text: "Short ones." },
      ],
      messages,
    });
    const asMessage = await count({
      model: "stories",
      messages: [{ role: "system", content: "You tell stories.\nShort ones." }, ...messages],
    });
    const without = await count({ model: "stories", messages });
    assert.equal(asBlocks, asString);
    assert.equal(asMessage, asString);
    assert.ok(asString > without + 5, "the system text is in the prompt");

    const fromString = await create({ ...story(10), system: "You tell stories.\nShort ones." });
    const fromBlocks = await create({
      ...story(10),
      system: [
        { type: "text", text: "You tell stories." },
        { type: "text", text: "Short ones." },
      ],
    });
    assert.deepEqual(fromBlocks.content, fromString.content);
  });

  test("stop_sequences end the text before the stop sequence; stop_reason stop_sequence names it", async () => {
    const whole = await create(story(40));
    const text = whole.content[0]!.type === "text" ? whole.content[0]!.text : "";
    const stop = text.slice(12, 16);
    const expected = text.slice(0, text.indexOf(stop));
    const stopped = await create({ ...story(40), stop_sequences: ["never appears", stop] });
    assert.deepEqual(stopped.content, [{ type: "text", text: expected }]);
    assert.ok(stopped.usage.output_tokens < 40);
    assert.equal(stopped.stop_reason, "stop_sequence");
    assert.equal(stopped.stop_sequence, stop);
    const streamed = await postJson(`${server.url}/v1/messages`, {
      ...story(40),
      stop_sequences: ["never appears", stop],
      stream: true,
    });
    const delta = (await readEvents(streamed)).find((e) => e.event === "message_delta")!;
    assert.deepEqual(
      {
        reason: (delta.data.delta as { stop_reason: string }).stop_reason,
        sequence: (delta.data.delta as { stop_sequence: string }).stop_sequence,
      },
      { reason: "stop_sequence", sequence: stop },
    );
    // An answer that ends by itself is still end_turn with no stop_sequence.
    const natural = await create({ ...story(400), stop_sequences: ["never appears"] });
    if (natural.stop_reason !== "max_tokens") {
      assert.equal(natural.stop_reason, "end_turn");
      assert.equal(natural.stop_sequence, null);
    }
  });

  test("tools: a forced call is a tool_use block, streamed as input_json_delta; stop_reason tool_use", async () => {
    const params: CreateParams = {
      ...story(100),
      messages: [{ role: "user", content: "What is the weather in Oslo?" }],
      tools: [weatherTool],
      tool_choice: { type: "tool", name: "get_weather" },
    };
    const message = await create(params);
    assert.equal(message.stop_reason, "tool_use");
    assert.equal(message.content.length, 1);
    const call = message.content[0]!;
    assert.ok(call.type === "tool_use");
    assert.match(call.id, /^toolu_[0-9a-f]{24}$/);
    assert.equal(call.name, "get_weather");
    const input = call.input as { city: string; celsius: boolean };
    assert.deepEqual(Object.keys(input).sort(), ["celsius", "city"]);
    assert.ok(["Oslo", "Lima", "Pune"].includes(input.city));
    assert.equal(typeof input.celsius, "boolean");

    const response = await postJson(`${server.url}/v1/messages`, {
      ...params,
      tool_choice: { type: "any" },
      stream: true,
    });
    const events = await readEvents(response);
    assert.deepEqual(
      events.map((e) => e.event),
      [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
      ],
    );
    const block = events[1]!.data.content_block as { type: string; id: string; name: string; input: unknown };
    assert.equal(block.type, "tool_use");
    assert.match(block.id, /^toolu_/);
    assert.equal(block.name, "get_weather");
    assert.deepEqual(block.input, {});
    const delta = events[3]!.data.delta as { type: string; partial_json: string };
    assert.equal(delta.type, "input_json_delta");
    assert.deepEqual(Object.keys(JSON.parse(delta.partial_json)).sort(), ["celsius", "city"]);
    assert.equal((events[5]!.data.delta as { stop_reason: string }).stop_reason, "tool_use");

    const final = await client.messages.stream({ ...params, tool_choice: { type: "any" } }).finalMessage();
    const streamedCall = final.content[0]!;
    assert.ok(streamedCall.type === "tool_use");
    assert.deepEqual(streamedCall.input, JSON.parse(delta.partial_json), "the SDK assembles the streamed input");
  });

  test("a conversation carrying tool_use and tool_result continues; the tools and the results reach the prompt", async () => {
    const messages: Anthropic.MessageParam[] = [
      { role: "user", content: "Weather in Lima?" },
      {
        role: "assistant",
        content: [
          { type: "text", text: "Let me look." },
          { type: "tool_use", id: "toolu_1", name: "get_weather", input: { city: "Lima", celsius: true } },
        ],
      },
      {
        role: "user",
        content: [
          { type: "tool_result", tool_use_id: "toolu_1", content: "21 degrees, sunny" },
          { type: "text", text: "Thanks." },
        ],
      },
    ];
    const plain = await count({ model: "stories", messages: [{ role: "user", content: "Weather in Lima?" }] });
    const withHistory = await count({ model: "stories", messages });
    const withTools = await count({ model: "stories", messages, tools: [weatherTool] });
    assert.ok(withHistory > plain + 20, "the call and its result are in the prompt");
    assert.ok(withTools > withHistory + 20, "the tool list is in the prompt");
    const answer = await create({ ...story(5), messages, tools: [weatherTool], tool_choice: { type: "auto" } });
    assert.equal(answer.role, "assistant");
    assert.equal(answer.usage.input_tokens + answer.usage.cache_read_input_tokens!, withTools);
  });

  test("output_config.format: the answer parses and matches the JSON schema", async () => {
    const schema = {
      type: "object",
      properties: { name: { type: "string", maxLength: 12 }, happy: { type: "boolean" } },
      required: ["name", "happy"],
      additionalProperties: false,
    };
    const message = await create({ ...story(80), output_config: { format: { type: "json_schema", schema } } });
    assert.equal(message.stop_reason, "end_turn");
    const block = message.content[0]!;
    assert.ok(block.type === "text");
    const value = JSON.parse(block.text) as { name: string; happy: boolean };
    assert.deepEqual(Object.keys(value).sort(), ["happy", "name"]);
    assert.equal(typeof value.name, "string");
    assert.ok(value.name.length <= 12);
    assert.equal(typeof value.happy, "boolean");
  });

  test("an unknown model is 404 not_found_error in Anthropic's shape, streamed or not", async () => {
    await assert.rejects(create({ ...story(5), model: "no-such-model" }), (error: unknown) => {
      assert.ok(error instanceof Anthropic.NotFoundError);
      assert.equal(error.status, 404);
      assertAnthropicError(error.error, "not_found_error", "no-such-model");
      return true;
    });
    const response = await postJson(`${server.url}/v1/messages`, { ...story(5), model: "no-such-model", stream: true });
    assert.equal(response.status, 404);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    assertAnthropicError(await response.json(), "not_found_error", "no-such-model");
    const counted = await postJson(`${server.url}/v1/messages/count_tokens`, {
      model: "no-such-model",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(counted.status, 404);
    assertAnthropicError(await counted.json(), "not_found_error", "no-such-model");
  });

  test("unknown fields are ignored; x-api-key, anthropic-version and anthropic-beta are accepted", async () => {
    const response = await fetch(`${server.url}/v1/messages`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-api-key": "sk-ant-anything",
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "some-beta-2025-01-01",
      },
      body: JSON.stringify({
        ...story(3),
        metadata: { user_id: "user-1" },
        top_p: 0.9,
        top_k: 40,
        thinking: { type: "disabled" },
        service_tier: "auto",
        some_future_field: { nested: true },
      }),
    });
    assert.equal(response.status, 200);
    assert.equal(((await response.json()) as { usage: { output_tokens: number } }).usage.output_tokens, 3);
  });

  describe("bad input: 400 invalid_request_error naming the field", () => {
    const base = { model: "stories", max_tokens: 5, messages: [{ role: "user", content: "hi" }] };
    const tool = { name: "f", input_schema: { type: "object", properties: {} } };
    const cases: [string, Record<string, unknown> | string, string | null, string?][] = [
      ["malformed JSON", "{not json", null],
      ["missing model", { max_tokens: 5, messages: base.messages }, "model"],
      ["missing max_tokens", { model: "stories", messages: base.messages }, "max_tokens"],
      ["max_tokens zero", { ...base, max_tokens: 0 }, "max_tokens"],
      ["max_tokens fractional", { ...base, max_tokens: 2.5 }, "max_tokens"],
      ["missing messages", { model: "stories", max_tokens: 5 }, "messages"],
      ["empty messages", { ...base, messages: [] }, "messages"],
      ["bad role", { ...base, messages: [{ role: "tool", content: "x" }] }, "messages[0].role"],
      ["content wrong type", { ...base, messages: [{ role: "user", content: 42 }] }, "messages[0].content"],
      [
        "an image block by URL (fetching it would be egress)",
        { ...base, messages: [{ role: "user", content: [{ type: "image", source: { type: "url", url: "x" } }] }] },
        "messages[0].content[0].source",
      ],
      [
        "a document block",
        {
          ...base,
          messages: [{ role: "user", content: [{ type: "document", source: { type: "text", data: "x" } }] }],
        },
        "messages[0].content[0].type",
      ],
      [
        "a text block without text",
        { ...base, messages: [{ role: "user", content: [{ type: "text" }] }] },
        "messages[0].content[0].text",
      ],
      [
        "tool_use in a user message",
        { ...base, messages: [{ role: "user", content: [{ type: "tool_use", id: "t", name: "f", input: {} }] }] },
        "messages[0].content[0]",
      ],
      ["system wrong type", { ...base, system: 5 }, "system"],
      ["temperature above 1", { ...base, temperature: 1.5 }, "temperature"],
      ["temperature a string", { ...base, temperature: "hot" }, "temperature"],
      ["top_p above 1", { ...base, top_p: 1.5 }, "top_p"],
      ["top_k fractional", { ...base, top_k: 2.5 }, "top_k"],
      ["stop_sequences a string", { ...base, stop_sequences: "END" }, "stop_sequences"],
      ["an empty stop sequence", { ...base, stop_sequences: [""] }, "stop_sequences[0]"],
      ["stream not a boolean", { ...base, stream: "yes" }, "stream"],
      ["metadata.user_id a number", { ...base, metadata: { user_id: 5 } }, "metadata.user_id"],
      ["a server tool", { ...base, tools: [{ type: "web_search_20250305", name: "web_search" }] }, "tools[0].type"],
      ["a tool name with spaces", { ...base, tools: [{ ...tool, name: "get weather" }] }, "tools[0].name"],
      ["a tool without input_schema", { ...base, tools: [{ name: "f" }] }, "tools[0].input_schema"],
      [
        "an input_schema the grammar cannot enforce",
        {
          ...base,
          tools: [{ ...tool, input_schema: { type: "object", properties: { a: { type: "string", pattern: "x+" } } } }],
        },
        "tools[0].input_schema",
      ],
      [
        "tool_choice naming an unknown tool",
        { ...base, tools: [tool], tool_choice: { type: "tool", name: "g" } },
        "tool_choice.name",
      ],
      ["tool_choice any without tools", { ...base, tool_choice: { type: "any" } }, "tool_choice"],
      [
        "tool_choice of an unknown type",
        { ...base, tools: [tool], tool_choice: { type: "sometimes" } },
        "tool_choice.type",
      ],
      [
        "an output schema the grammar cannot enforce",
        { ...base, output_config: { format: { type: "json_schema", schema: { type: "string", format: "email" } } } },
        "output_config.format.schema",
      ],
      ["count_tokens without messages", { model: "stories" }, "messages", "/v1/messages/count_tokens"],
    ];
    for (const [name, body, field, path = "/v1/messages"] of cases) {
      test(name, async () => {
        const response = await postJson(`${server.url}${path}`, body);
        assert.equal(response.status, 400);
        assertAnthropicError(await response.json(), "invalid_request_error", field ?? undefined);
      });
    }
  });
});

describe("Anthropic Messages API in-process: errors before and during a stream", () => {
  /** A model port that answers from a script; `closed` counts generations that were ended. */
  function scripted(script: (request: unknown) => AsyncGenerator<ChatEvent>, countTokens = async () => 7) {
    const state = { closed: 0 };
    const port: ModelPort = {
      generate: async function* (request) {
        try {
          yield* script(request);
        } finally {
          state.closed++;
        }
      },
      countTokens,
      embed: () => Promise.reject(new Error("not used")),
      listModels: () => Promise.resolve([]),
    };
    const app = apiRoutesApp((routes) => registerAnthropicRoutes(routes, new Gateway(port)));
    const post = (body: Record<string, unknown>) =>
      postJsonTo(app, "/v1/messages", {
        model: "m",
        max_tokens: 5,
        messages: [{ role: "user", content: "hi" }],
        ...body,
      });
    return { post, state };
  }

  test("an error mid-stream is an error event in Anthropic's shape, and the stream ends there", async () => {
    const { post } = scripted(async function* () {
      yield { type: "text-delta", text: "Once" };
      yield {
        type: "error",
        error: { message: "the model runner crashed", code: "runner_crashed", status: 500, retryable: true },
      };
      yield { type: "text-delta", text: " more" };
    });
    const events = await readEvents(await post({ stream: true }));
    assert.deepEqual(
      events.map((e) => e.event),
      ["message_start", "content_block_start", "ping", "content_block_delta", "error"],
    );
    assert.deepEqual(events.at(-1)!.data, {
      type: "error",
      error: { type: "api_error", message: "the model runner crashed" },
    });
    assert.equal((events[0]!.data.message as { usage: { input_tokens: number } }).usage.input_tokens, 7);
  });

  test("a stream whose source throws ends with an error event; a stream with no content still has one block", async () => {
    const { post } = scripted(async function* () {
      yield { type: "text-delta", text: "Once" };
      throw new Error("something internal");
    });
    const events = await readEvents(await post({ stream: true }));
    assert.deepEqual(events.at(-1)!.data, {
      type: "error",
      error: { type: "api_error", message: "internal server error" },
    });

    const empty = scripted(async function* () {
      yield { type: "usage", usage: { promptTokens: 7, completionTokens: 0 } };
      yield { type: "finish", reason: "stop" };
    });
    const emptyEvents = await readEvents(await empty.post({ stream: true }));
    assert.deepEqual(
      emptyEvents.map((e) => e.event),
      ["message_start", "content_block_start", "ping", "content_block_stop", "message_delta", "message_stop"],
    );
    const whole = (await (await empty.post({})).json()) as { content: unknown };
    assert.deepEqual(whole.content, [{ type: "text", text: "" }]);
  });

  test("overloaded before the stream starts: 503 overloaded_error with Retry-After; the generation is not left open", async () => {
    const { post } = scripted(async function* () {
      yield* [];
      throw new OverloadedError("the queue for this model is full; retry shortly", "queue_full", 2);
    });
    for (const stream of [false, true]) {
      const response = await post({ stream });
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "2");
      assertAnthropicError(await response.json(), "overloaded_error", "queue");
    }

    const failingCount = scripted(
      async function* () {
        yield { type: "text-delta", text: "Once" };
        yield { type: "finish", reason: "stop" };
      },
      () => Promise.reject(new OverloadedError("the runner is busy", "busy", 1)),
    );
    const response = await failingCount.post({ stream: true });
    assert.equal(response.status, 503);
    assertAnthropicError(await response.json(), "overloaded_error", "busy");
    assert.equal(failingCount.state.closed, 1, "the started generation was ended");
  });
});
