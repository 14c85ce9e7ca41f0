import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { temporaryDirectory } from "./helpers/paths.js";
import { postJson, readSse, type ServerProcess, startServerProcess } from "./helpers/server.js";

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather for a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string", enum: ["Oslo", "Lima", "Pune"] }, celsius: { type: "boolean" } },
      required: ["city", "celsius"],
      additionalProperties: false,
    },
  },
};
const timeTool = {
  type: "function" as const,
  function: {
    name: "get_time",
    parameters: { type: "object", properties: { zone: { type: "string", enum: ["UTC", "CET"] } }, required: ["zone"] },
  },
};

function assertWeatherArguments(text: string): void {
  const args = JSON.parse(text) as { city: string; celsius: boolean };
  assert.deepEqual(Object.keys(args).sort(), ["celsius", "city"]);
  assert.ok(["Oslo", "Lima", "Pune"].includes(args.city));
  assert.equal(typeof args.celsius, "boolean");
}

describe("tool calls (a synthetic model, calls forced by grammar)", () => {
  const files = temporaryDirectory();
  let server: ServerProcess;
  let client: OpenAI;
  before(async () => {
    const tiny = join(files.path, "tiny.gguf");
    writeSyntheticModel(tiny, { preset: "tiny", quant: "q8_0", seed: 11 });
    server = await startServerProcess({ models: { tiny } });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  after(async () => {
    await server?.dispose();
    files.dispose();
  });

  test("tool_choice naming a function: the answer is a call to it with arguments that match its schema", async () => {
    const answer = await client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "What is the weather in Oslo?" }],
      tools: [weatherTool, timeTool],
      tool_choice: { type: "function", function: { name: "get_weather" } },
      temperature: 0.7,
      seed: 3,
      max_tokens: 100,
    });
    const choice = answer.choices[0]!;
    assert.equal(choice.finish_reason, "tool_calls");
    assert.equal(choice.message.content, null);
    const calls = choice.message.tool_calls ?? [];
    assert.equal(calls.length, 1);
    const call = calls[0]!;
    assert.equal(call.type, "function");
    assert.match(call.id, /^call_[0-9a-f]{24}$/);
    if (call.type !== "function") throw new Error("not a function call");
    assert.equal(call.function.name, "get_weather");
    assertWeatherArguments(call.function.arguments);
  });

  test("streamed: id and name first, then the arguments, under index 0; finish_reason tool_calls", async () => {
    const response = await postJson(`${server.url}/v1/chat/completions`, {
      model: "tiny",
      messages: [{ role: "user", content: "Weather?" }],
      tools: [weatherTool],
      tool_choice: "required",
      temperature: 0.7,
      seed: 5,
      max_tokens: 100,
      stream: true,
    });
    const frames = await readSse(response);
    assert.equal(frames.at(-1), "[DONE]");
    const chunks = frames.slice(0, -1).map((frame) => JSON.parse(frame));
    const toolDeltas = chunks
      .filter((c) => c.choices[0]?.delta?.tool_calls)
      .map((c) => c.choices[0].delta.tool_calls[0]);
    assert.equal(toolDeltas.length, 2);
    assert.equal(toolDeltas[0].index, 0);
    assert.equal(toolDeltas[0].type, "function");
    assert.equal(toolDeltas[0].function.name, "get_weather");
    assert.equal(toolDeltas[0].function.arguments, "");
    assert.equal(toolDeltas[1].index, 0);
    assertWeatherArguments(toolDeltas[1].function.arguments);
    assert.equal(chunks.at(-1).choices[0].finish_reason, "tool_calls");
  });

  test("required with two tools picks one of them; none gives plain text", async () => {
    const required = await client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Time or weather?" }],
      tools: [weatherTool, timeTool],
      tool_choice: "required",
      temperature: 0.9,
      seed: 8,
      max_tokens: 100,
    });
    const call = required.choices[0]!.message.tool_calls?.[0];
    assert.ok(call && call.type === "function" && ["get_weather", "get_time"].includes(call.function.name));
    const none = await client.chat.completions.create({
      model: "tiny",
      messages: [{ role: "user", content: "Hello" }],
      tools: [weatherTool],
      tool_choice: "none",
      max_tokens: 5,
    });
    assert.equal(none.choices[0]!.message.tool_calls, undefined);
    assert.notEqual(none.choices[0]!.finish_reason, "tool_calls");
  });

  test("parallel calls: an answer that is an array of calls becomes several calls (OpenAI, Anthropic, Ollama)", async () => {
    // The model chooses parallel calls itself ("auto"); here a response_format shaped like two calls makes this
    // small model write them, so the whole path (runner parse, each API's wire shape) runs for real.
    const call = (name: string, parameters: object) => ({
      type: "object",
      properties: { name: { const: name }, arguments: parameters },
      required: ["name", "arguments"],
      additionalProperties: false,
    });
    const twoCalls = {
      type: "array",
      prefixItems: [
        call("get_weather", weatherTool.function.parameters),
        call("get_time", timeTool.function.parameters),
      ],
      items: false,
      minItems: 2,
      maxItems: 2,
    };
    const request = {
      model: "tiny",
      messages: [{ role: "user" as const, content: "Weather and time in Oslo?" }],
      tools: [weatherTool, timeTool],
      tool_choice: "auto" as const,
      response_format: { type: "json_schema" as const, json_schema: { name: "calls", schema: twoCalls } },
      temperature: 0.7,
      seed: 4,
      max_tokens: 300,
    };
    const answer = await client.chat.completions.create(request);
    const choice = answer.choices[0]!;
    assert.equal(choice.finish_reason, "tool_calls");
    const calls = (choice.message.tool_calls ?? []).map((c) => (c.type === "function" ? c.function : null));
    assert.deepEqual(
      calls.map((c) => c?.name),
      ["get_weather", "get_time"],
    );
    assertWeatherArguments(calls[0]!.arguments);
    assert.ok(["UTC", "CET"].includes((JSON.parse(calls[1]!.arguments) as { zone: string }).zone));
    assert.notEqual(choice.message.tool_calls![0]!.id, choice.message.tool_calls![1]!.id);

    const frames = await readSse(await postJson(`${server.url}/v1/chat/completions`, { ...request, stream: true }));
    const deltas = frames
      .slice(0, -1)
      .map((frame) => JSON.parse(frame))
      .filter((c) => c.choices[0]?.delta?.tool_calls)
      .map((c) => c.choices[0].delta.tool_calls[0]);
    assert.deepEqual(
      deltas.map((d) => [d.index, d.function.name ?? null]),
      [
        [0, "get_weather"],
        [0, null],
        [1, "get_time"],
        [1, null],
      ],
    );

    const anthropic = await postJson(`${server.url}/v1/messages`, {
      model: "tiny",
      max_tokens: 300,
      temperature: 0.7,
      messages: request.messages,
      tools: [weatherTool, timeTool].map((t) => ({ name: t.function.name, input_schema: t.function.parameters })),
      output_config: { format: { type: "json_schema", schema: twoCalls } },
    });
    const message = (await anthropic.json()) as { stop_reason: string; content: { type: string; name: string }[] };
    assert.equal(message.stop_reason, "tool_use");
    assert.deepEqual(
      message.content.map((block) => [block.type, block.name]),
      [
        ["tool_use", "get_weather"],
        ["tool_use", "get_time"],
      ],
    );

    const ollama = await postJson(`${server.url}/api/chat`, {
      model: "tiny",
      messages: request.messages,
      tools: [weatherTool, timeTool],
      format: twoCalls,
      stream: false,
      options: { temperature: 0.7, seed: 4, num_predict: 300 },
    });
    const ollamaAnswer = (await ollama.json()) as { message: { tool_calls: { function: { name: string } }[] } };
    assert.deepEqual(
      ollamaAnswer.message.tool_calls.map((c) => c.function.name),
      ["get_weather", "get_time"],
    );
  });

  test("a conversation carrying a call and its result continues; tools add their description to the prompt", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [
      { role: "user", content: "Weather in Lima?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          {
            id: "call_1",
            type: "function",
            function: { name: "get_weather", arguments: '{"city":"Lima","celsius":true}' },
          },
        ],
      },
      { role: "tool", tool_call_id: "call_1", content: "21 degrees, sunny" },
    ];
    const withTools = await client.chat.completions.create({
      model: "tiny",
      messages,
      tools: [weatherTool],
      tool_choice: "auto",
      max_tokens: 3,
      temperature: 0,
    });
    const withoutTools = await client.chat.completions.create({
      model: "tiny",
      messages,
      max_tokens: 3,
      temperature: 0,
    });
    assert.ok(
      withTools.usage!.prompt_tokens > withoutTools.usage!.prompt_tokens + 20,
      "the tool list is in the prompt",
    );
    assert.ok(withoutTools.usage!.prompt_tokens > 20, "the call and its result are in the prompt");

    const ollama = new Ollama({ host: server.url });
    const conversation = [
      { role: "user", content: "Weather in Pune?" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "get_weather", arguments: { city: "Pune", celsius: true } } }],
      },
      { role: "tool", content: "30 degrees", tool_name: "get_weather" },
    ];
    const ask = (tools?: (typeof weatherTool)[]) =>
      ollama.chat({
        model: "tiny",
        messages: conversation,
        ...(tools ? { tools } : {}),
        stream: false,
        options: { num_predict: 3, temperature: 0 },
      });
    const [withOllamaTools, withoutOllamaTools] = [await ask([weatherTool]), await ask()];
    assert.equal(withOllamaTools.message.role, "assistant");
    assert.ok(
      withOllamaTools.prompt_eval_count > withoutOllamaTools.prompt_eval_count + 20,
      "Ollama's tools reach the prompt too",
    );
    assert.ok(withoutOllamaTools.prompt_eval_count > 15, "the earlier call and its result are in the prompt");
    for (const call of withOllamaTools.message.tool_calls ?? []) assert.equal(typeof call.function.arguments, "object");
  });
});
