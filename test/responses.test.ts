import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import OpenAI from "openai";
import type { ChatEvent } from "../src/core/chat.js";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { ResponseAssembler, type ResponseEnvelope } from "../src/http/responses/encode.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

const weatherTool = {
  type: "function" as const,
  name: "get_weather",
  description: "Current weather for a city",
  strict: true,
  parameters: {
    type: "object",
    properties: { city: { type: "string", enum: ["Oslo", "Lima", "Pune"] }, celsius: { type: "boolean" } },
    required: ["city", "celsius"],
    additionalProperties: false,
  },
};

const answerSchema = {
  type: "object",
  properties: { answer: { type: "string", enum: ["yes", "no"] }, confident: { type: "boolean" } },
  required: ["answer", "confident"],
  additionalProperties: false,
};

function assertWeatherArguments(text: string): void {
  const args = JSON.parse(text) as { city: string; celsius: boolean };
  assert.deepEqual(Object.keys(args).sort(), ["celsius", "city"]);
  assert.ok(["Oslo", "Lima", "Pune"].includes(args.city));
  assert.equal(typeof args.celsius, "boolean");
}

/** The text of a Response's message items, read from the wire shape (not the SDK's computed output_text). */
function messageText(response: OpenAI.Responses.Response): string {
  return response.output
    .flatMap((item) => (item.type === "message" ? item.content : []))
    .map((part) => (part.type === "output_text" ? part.text : ""))
    .join("");
}

/** Reads a named-event SSE body into (event name, parsed data) pairs. */
async function readNamedSse(response: Response): Promise<{ event: string; data: Record<string, unknown> }[]> {
  const text = await response.text();
  return text
    .split("\n\n")
    .filter((frame) => frame.trim())
    .map((frame) => {
      const match = /^event: (\S+)\ndata: (.*)$/s.exec(frame);
      assert.ok(match, `not an event frame: ${frame}`);
      return { event: match[1]!, data: JSON.parse(match[2]!) as Record<string, unknown> };
    });
}

async function collect(stream: AsyncIterable<OpenAI.Responses.ResponseStreamEvent>) {
  const events: OpenAI.Responses.ResponseStreamEvent[] = [];
  for await (const event of stream) events.push(event);
  return events;
}

function assertSequenced(events: { sequence_number: number }[]): void {
  assert.deepEqual(
    events.map((event) => event.sequence_number),
    events.map((_, index) => index),
  );
}

describe("OpenAI Responses API (POST /v1/responses, stateless)", () => {
  const files = temporaryDirectory();
  let server: ServerProcess;
  let client: OpenAI;
  before(async () => {
    const tiny = join(files.path, "tiny.gguf");
    writeSyntheticModel(tiny, { preset: "tiny", quant: "q8_0", seed: 11 });
    server = await startServerProcess({ models: storiesModelMissing ? { tiny } : { tiny, stories: storiesModelPath } });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await server?.dispose();
    files.dispose();
  });

  test("non-streamed: a Response in the SDK's shape, echoing the request; max_output_tokens makes it incomplete", async () => {
    const started = Math.floor(Date.now() / 1000);
    const response = await client.responses.create({
      model: "tiny",
      instructions: "You are terse.",
      input: [
        { role: "developer", content: "Answer in one word." },
        { role: "user", content: [{ type: "input_text", text: "Hello" }] },
      ],
      max_output_tokens: 5,
      temperature: 0,
      top_p: 0.9,
      metadata: { run: "a" },
      store: false,
      user: "user-1",
    });
    assert.match(response.id, /^resp_[0-9a-f]{32}$/);
    assert.equal(response.object, "response");
    assert.ok(response.created_at >= started - 1 && response.created_at <= started + 60);
    assert.equal(response.status, "incomplete");
    assert.deepEqual(response.incomplete_details, { reason: "max_output_tokens" });
    assert.equal(response.error, null);
    assert.equal(response.model, "tiny");
    assert.equal(response.instructions, "You are terse.");
    assert.deepEqual(response.metadata, { run: "a" });
    assert.equal(response.user, "user-1");
    assert.equal(response.temperature, 0);
    assert.equal(response.top_p, 0.9);
    assert.equal(response.max_output_tokens, 5);
    assert.equal(response.tool_choice, "auto");
    assert.deepEqual(response.tools, []);
    assert.equal(response.parallel_tool_calls, true);
    assert.deepEqual(response.text, { format: { type: "text" } });
    assert.equal(response.previous_response_id, null);

    assert.equal(response.output.length, 1);
    const item = response.output[0]!;
    assert.equal(item.type, "message");
    if (item.type !== "message") throw new Error("not a message");
    assert.match(item.id, /^msg_[0-9a-f]{32}$/);
    assert.equal(item.role, "assistant");
    assert.equal(item.status, "incomplete");
    assert.equal(item.content.length, 1);
    const part = item.content[0]!;
    assert.equal(part.type, "output_text");
    if (part.type !== "output_text") throw new Error("not output_text");
    assert.deepEqual(part.annotations, []);
    assert.ok(part.text.length > 0);
    assert.equal(response.output_text, part.text, "the SDK computes output_text from the message");

    const usage = response.usage!;
    assert.equal(usage.output_tokens, 5);
    assert.equal(usage.total_tokens, usage.input_tokens + usage.output_tokens);
    assert.equal(usage.output_tokens_details.reasoning_tokens, 0);
    // The server's first request: nothing of it can have been cached.
    assert.equal(usage.input_tokens_details.cached_tokens, 0);

    const bare = await client.responses.create({ model: "tiny", input: "Hello", max_output_tokens: 1, temperature: 0 });
    assert.ok(
      usage.input_tokens > bare.usage!.input_tokens + 8,
      "instructions and the developer message reach the prompt",
    );
    assert.equal(bare.instructions, null);
    assert.deepEqual(bare.metadata, {});
  });

  test("the wire: no output_text (the SDK adds it), unknown fields ignored, store accepted", async () => {
    const response = await postJson(`${server.url}/v1/responses`, {
      model: "tiny",
      input: "Hi",
      max_output_tokens: 2,
      store: true,
      service_tier: "auto",
      some_future_field: { nested: 1 },
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as Record<string, unknown>;
    assert.equal(body.object, "response");
    assert.equal("output_text" in body, false);
    assert.equal("some_future_field" in body, false);
  });

  test("streamed: the exact event sequence with increasing sequence numbers; deltas join into the non-streamed text", async () => {
    const request = { model: "tiny", input: "Hello", max_output_tokens: 12, temperature: 0 };
    const whole = await client.responses.create(request);
    const events = await collect(await client.responses.create({ ...request, stream: true }));
    const types = events.map((event) => event.type);
    const deltas = types.filter((type) => type === "response.output_text.delta").length;
    assert.ok(deltas >= 1);
    assert.deepEqual(types, [
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      ...Array.from({ length: deltas }, () => "response.output_text.delta"),
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.incomplete",
    ]);
    assertSequenced(events);

    const created = events[0] as OpenAI.Responses.ResponseCreatedEvent;
    assert.equal(created.response.status, "in_progress");
    assert.deepEqual(created.response.output, []);
    const added = events[2] as OpenAI.Responses.ResponseOutputItemAddedEvent;
    assert.equal(added.output_index, 0);
    assert.equal(added.item.type, "message");
    if (added.item.type !== "message") throw new Error("not a message");
    assert.equal(added.item.status, "in_progress");
    assert.deepEqual(added.item.content, []);
    const itemId = added.item.id;

    let text = "";
    for (const event of events) {
      if (event.type !== "response.output_text.delta") continue;
      assert.equal(event.item_id, itemId);
      assert.equal(event.output_index, 0);
      assert.equal(event.content_index, 0);
      assert.deepEqual(event.logprobs, []);
      text += event.delta;
    }
    const done = events.find((event) => event.type === "response.output_text.done");
    assert.equal(done?.type === "response.output_text.done" && done.text, text);
    const last = events.at(-1) as OpenAI.Responses.ResponseIncompleteEvent;
    assert.equal(last.response.id, created.response.id);
    assert.equal(last.response.status, "incomplete");
    assert.deepEqual(last.response.incomplete_details, { reason: "max_output_tokens" });
    assert.equal(messageText(last.response), text);
    assert.equal(last.response.usage?.output_tokens, 12);
    assert.equal(text, messageText(whole), "streamed text equals non-streamed text at temperature 0");

    // The SDK's stream helper accumulates the same events into the same answer.
    const final = await client.responses.stream({ ...request }).finalResponse();
    assert.equal(final.output_text, text);

    // Named events on the wire: each frame's `event:` is its data's type.
    const raw = await readNamedSse(await postJson(`${server.url}/v1/responses`, { ...request, stream: true }));
    assert.deepEqual(
      raw.map((frame) => frame.event),
      types,
    );
    for (const frame of raw) assert.equal(frame.data.type, frame.event);
  });

  test("stories260K at temperature 0: a story, the same streamed and not", { skip: storiesModelMissing }, async () => {
    const request = { model: "stories", input: "Once upon a time", max_output_tokens: 30, temperature: 0 };
    const whole = await client.responses.create(request);
    assert.equal(whole.status, "incomplete");
    assert.equal(whole.usage?.output_tokens, 30);
    assert.match(whole.output_text, /\b[a-z]{3,} [a-z]{3,}\b/, "English words from a real model");
    const events = await collect(await client.responses.create({ ...request, stream: true }));
    let streamed = "";
    for (const event of events) if (event.type === "response.output_text.delta") streamed += event.delta;
    assert.equal(streamed, whole.output_text);
  });

  test("tool_choice naming a function: a function_call item whose arguments match the schema", async () => {
    const request = {
      model: "tiny",
      input: "What is the weather in Oslo?",
      tools: [weatherTool],
      tool_choice: { type: "function" as const, name: "get_weather" },
      temperature: 0.7,
      max_output_tokens: 100,
    };
    const response = await client.responses.create(request);
    assert.equal(response.status, "completed");
    assert.equal(response.output.length, 1);
    const call = response.output[0]!;
    assert.equal(call.type, "function_call");
    if (call.type !== "function_call") throw new Error("not a function call");
    assert.match(call.id ?? "", /^fc_[0-9a-f]{32}$/);
    assert.match(call.call_id, /^call_/);
    assert.equal(call.name, "get_weather");
    assert.equal(call.status, "completed");
    assertWeatherArguments(call.arguments);
    assert.equal(response.output_text, "");
    assert.deepEqual(response.tool_choice, { type: "function", name: "get_weather" });
    assert.deepEqual(response.tools, [{ ...weatherTool }]);

    const events = await collect(await client.responses.create({ ...request, stream: true }));
    assert.deepEqual(
      events.map((event) => event.type),
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
      ],
    );
    assertSequenced(events);
    const added = events[2] as OpenAI.Responses.ResponseOutputItemAddedEvent;
    assert.equal(added.item.type === "function_call" && added.item.arguments, "");
    const delta = events[3] as OpenAI.Responses.ResponseFunctionCallArgumentsDeltaEvent;
    const argumentsDone = events[4] as OpenAI.Responses.ResponseFunctionCallArgumentsDoneEvent;
    assert.equal(delta.item_id, added.item.id);
    assert.equal(argumentsDone.arguments, delta.delta);
    assert.equal(argumentsDone.name, "get_weather");
    assertWeatherArguments(argumentsDone.arguments);
    const completed = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    const finalCall = completed.response.output[0];
    assert.equal(finalCall?.type === "function_call" && finalCall.arguments, argumentsDone.arguments);
  });

  test("a conversation carrying a function_call and its output continues; tools reach the prompt", async () => {
    const input: OpenAI.Responses.ResponseInput = [
      { role: "user", content: "Weather in Lima?" },
      { type: "function_call", call_id: "call_1", name: "get_weather", arguments: '{"city":"Lima","celsius":true}' },
      { type: "function_call_output", call_id: "call_1", output: "21 degrees, sunny" },
      {
        type: "message",
        id: "msg_1",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text: "Sunny.", annotations: [] }],
      },
      { role: "user", content: "Thanks" },
    ];
    const plain = await client.responses.create({ model: "tiny", input: "Weather in Lima?", max_output_tokens: 2 });
    const history = await client.responses.create({ model: "tiny", input, max_output_tokens: 2, temperature: 0 });
    const withTools = await client.responses.create({
      model: "tiny",
      input,
      tools: [weatherTool],
      max_output_tokens: 2,
      temperature: 0,
    });
    assert.ok(
      history.usage!.input_tokens > plain.usage!.input_tokens + 20,
      "the call and its result are in the prompt",
    );
    assert.ok(withTools.usage!.input_tokens > history.usage!.input_tokens + 20, "the tool list is in the prompt");
  });

  test("text.format json_schema: the answer parses and matches the schema", async () => {
    for (const seed of [1, 2]) {
      const response = await client.responses.create({
        model: "tiny",
        input: `Is the sky blue? (${seed})`,
        temperature: 0.8,
        max_output_tokens: 60,
        text: { format: { type: "json_schema", name: "answer", strict: true, schema: answerSchema } },
      });
      assert.equal(response.status, "completed", "the answer ends at the closing brace");
      const value = JSON.parse(response.output_text) as Record<string, unknown>;
      assert.deepEqual(Object.keys(value).sort(), ["answer", "confident"]);
      assert.ok(value.answer === "yes" || value.answer === "no");
      assert.equal(typeof value.confident, "boolean");
      assert.equal(response.text?.format?.type, "json_schema");
    }
  });

  test("previous_response_id and other stateful or unsupported fields: a 400 naming the field and saying why", async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ previous_response_id: "resp_123" }, "previous_response_id", /keeps no response state.*whole conversation/],
      [{ conversation: "conv_1" }, "conversation", /keeps no response state/],
      [{ background: true }, "background", /background: is not supported: this server keeps no response state/],
      [{ include: ["reasoning.encrypted_content"] }, "include", /include: is not supported/],
      // reasoning.effort is a budget now (test/reasoning.test.ts); summaries are not made.
      [{ reasoning: { summary: "auto" } }, "reasoning.summary", /reasoning summaries are not made by this server/],
      [{ prompt: { id: "pmpt_1" } }, "prompt", /stored prompt templates/],
      [{ input: [{ type: "item_reference", id: "msg_1" }] }, "input[0].type", /stores none/],
    ];
    for (const [fields, param, message] of cases) {
      const response = await postJson(`${server.url}/v1/responses`, { model: "tiny", input: "x", ...fields });
      assert.equal(response.status, 400, param);
      const body = (await response.json()) as { error: { param: string; message: string; type: string } };
      assert.equal(body.error.param, param);
      assert.equal(body.error.type, "invalid_request_error");
      assert.match(body.error.message, message);
    }
    const viaSdk = await client.responses.create({ model: "tiny", input: "x", previous_response_id: "resp_123" }).then(
      () => null,
      (error: unknown) => error,
    );
    assert.ok(viaSdk instanceof OpenAI.BadRequestError);
    assert.equal(viaSdk.param, "previous_response_id");
    // Neutral values of those fields are fine.
    const neutral = await postJson(`${server.url}/v1/responses`, {
      model: "tiny",
      input: "x",
      max_output_tokens: 1,
      previous_response_id: null,
      background: false,
      include: [],
      reasoning: null,
    });
    assert.equal(neutral.status, 200);
  });

  describe("bad input: a 400 naming the field, in OpenAI's error shape", () => {
    const base = { model: "tiny", input: "hi" };
    const cases: [string, Record<string, unknown>, string][] = [
      ["model missing", { input: "hi" }, "model"],
      ["input missing", { model: "tiny" }, "input"],
      ["input a number", { ...base, input: 5 }, "input"],
      ["input an empty array", { ...base, input: [] }, "input"],
      ["input item of an unknown type", { ...base, input: [{ type: "computer_call_output" }] }, "input[0].type"],
      ["input message with a bad role", { ...base, input: [{ role: "wizard", content: "x" }] }, "input[0].role"],
      [
        "input image by an http(s) URL (fetching it would be egress)",
        { ...base, input: [{ role: "user", content: [{ type: "input_image", image_url: "https://x" }] }] },
        "input[0].content[0].image_url",
      ],
      [
        "input file content",
        { ...base, input: [{ role: "user", content: [{ type: "input_file", file_id: "f" }] }] },
        "input[0].content[0].type",
      ],
      ["function_call without call_id", { ...base, input: [{ type: "function_call", name: "f" }] }, "input[0].call_id"],
      ["instructions a number", { ...base, instructions: 5 }, "instructions"],
      ["temperature too high", { ...base, temperature: 3 }, "temperature"],
      ["temperature a string", { ...base, temperature: "hot" }, "temperature"],
      ["top_p above 1", { ...base, top_p: 1.5 }, "top_p"],
      ["max_output_tokens zero", { ...base, max_output_tokens: 0 }, "max_output_tokens"],
      ["max_output_tokens fractional", { ...base, max_output_tokens: 2.5 }, "max_output_tokens"],
      ["unknown tool type", { ...base, tools: [{ type: "web_search" }] }, "tools[0].type"],
      ["function tool without a name", { ...base, tools: [{ type: "function", parameters: {} }] }, "tools[0].name"],
      [
        "tool parameters the grammar cannot enforce",
        { ...base, tools: [{ ...weatherTool, parameters: { type: "string", pattern: "a+" } }] },
        "tools[0].parameters",
      ],
      [
        "tool_choice naming a missing tool",
        { ...base, tools: [weatherTool], tool_choice: { type: "function", name: "nope" } },
        "tool_choice",
      ],
      ["tool_choice required without tools", { ...base, tool_choice: "required" }, "tool_choice"],
      ["tool_choice unknown", { ...base, tool_choice: "sometimes" }, "tool_choice"],
      ["text.format unknown type", { ...base, text: { format: { type: "yaml" } } }, "text.format.type"],
      [
        "text.format json_schema without schema",
        { ...base, text: { format: { type: "json_schema", name: "a" } } },
        "text.format.schema",
      ],
      [
        "text.format schema the grammar cannot enforce",
        { ...base, text: { format: { type: "json_schema", name: "a", schema: { type: "integer", minimum: 1 } } } },
        "text.format.schema",
      ],
      ["metadata value not a string", { ...base, metadata: { a: 1 } }, "metadata.a"],
      ["stream not a boolean", { ...base, stream: "yes" }, "stream"],
      ["truncation unknown", { ...base, truncation: "sometimes" }, "truncation"],
      ["top_logprobs", { ...base, top_logprobs: 3 }, "top_logprobs"],
    ];
    for (const [name, body, param] of cases) {
      test(name, async () => {
        const started = Date.now();
        const response = await postJson(`${server.url}/v1/responses`, body);
        assert.equal(response.status, 400);
        const error = ((await response.json()) as { error: Record<string, unknown> }).error;
        assert.equal(error.param, param);
        assert.equal(error.type, "invalid_request_error");
        assert.equal(typeof error.message, "string");
        assert.ok(Date.now() - started < 2000, "refused before any generation");
      });
    }

    test("an unknown model is a 404 JSON error, also with stream: true", async () => {
      for (const stream of [false, true]) {
        const response = await postJson(`${server.url}/v1/responses`, { model: "missing", input: "x", stream });
        assert.equal(response.status, 404);
        assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
        const error = ((await response.json()) as { error: Record<string, unknown> }).error;
        assert.equal(error.code, "model_not_found");
      }
    });
  });
});

describe("ResponseAssembler (the internal stream → Responses events, no server)", () => {
  const envelope: ResponseEnvelope = {
    id: "resp_test",
    createdAt: 1,
    model: "m",
    echo: {
      instructions: null,
      max_output_tokens: null,
      parallel_tool_calls: true,
      temperature: null,
      text: { format: { type: "text" } },
      tool_choice: "auto",
      tools: [],
      top_p: null,
      metadata: {},
    },
  };
  const run = (events: ChatEvent[]) => {
    const assembler = new ResponseAssembler(envelope);
    const out = events.flatMap((event) => assembler.push(event));
    return { out: [...out, ...assembler.end()], assembler };
  };
  const usage: ChatEvent = { type: "usage", usage: { promptTokens: 4, completionTokens: 3, cachedTokens: 2 } };

  test("an error mid-stream is an error event with code, message and param, and nothing follows it", () => {
    const { out } = run([
      { type: "text-delta", text: "Hel" },
      {
        type: "error",
        error: { message: "the runner crashed", code: "runner_crashed", status: 500, retryable: true },
      },
      { type: "text-delta", text: "lo" },
      { type: "finish", reason: "error" },
    ]);
    assert.deepEqual(
      out.map((event) => event.type),
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "error",
      ],
    );
    assert.deepEqual(out.at(-1), {
      type: "error",
      code: "runner_crashed",
      message: "the runner crashed",
      param: null,
      sequence_number: 5,
    });
  });

  test("text then a call: a message item closed before the function_call item; usage in the final Response", () => {
    const { out, assembler } = run([
      { type: "text-delta", text: "Let me check." },
      { type: "tool-call", call: { id: "call_9", name: "f", arguments: "{}" } },
      usage,
      { type: "finish", reason: "tool-calls" },
    ]);
    assert.deepEqual(
      out.map((event) => `${event.type}${"output_index" in event ? `@${String(event.output_index)}` : ""}`),
      [
        "response.created",
        "response.in_progress",
        "response.output_item.added@0",
        "response.content_part.added@0",
        "response.output_text.delta@0",
        "response.output_text.done@0",
        "response.content_part.done@0",
        "response.output_item.done@0",
        "response.output_item.added@1",
        "response.function_call_arguments.delta@1",
        "response.function_call_arguments.done@1",
        "response.output_item.done@1",
        "response.completed",
      ],
    );
    const response = assembler.response() as unknown as OpenAI.Responses.Response;
    assert.equal(response.status, "completed");
    assert.deepEqual(
      response.output.map((item) => [item.type, "status" in item ? item.status : undefined]),
      [
        ["message", "completed"],
        ["function_call", "completed"],
      ],
    );
    assert.deepEqual(response.usage, {
      input_tokens: 4,
      input_tokens_details: { cached_tokens: 2, cache_write_tokens: 0 },
      output_tokens: 3,
      output_tokens_details: { reasoning_tokens: 0 },
      total_tokens: 7,
    });
  });

  test("an empty answer is still one (empty) message item", () => {
    const { out, assembler } = run([usage, { type: "finish", reason: "stop" }]);
    assert.equal(out.filter((event) => event.type === "response.output_text.delta").length, 0);
    const response = assembler.response() as unknown as OpenAI.Responses.Response;
    assert.equal(response.output.length, 1);
    const item = response.output[0]!;
    assert.equal(item.type === "message" && item.content[0]?.type === "output_text" && item.content[0].text, "");
  });
});
