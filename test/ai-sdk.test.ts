import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, embed, embedMany, generateText, Output, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { type ServerProcess, startServerProcess } from "./helpers/server.js";

/**
 * The Vercel AI SDK (`ai` 7 with `@ai-sdk/openai-compatible` 3) against a real server. Each call goes through the
 * SDK's own request building and response parsing; a recording fetch keeps what crossed the wire, so the tests can
 * check our side of the exchange as well as what the SDK made of it.
 */

interface Exchange {
  url: string;
  request: Record<string, unknown>;
  status: number;
  /** The whole response body (SSE text when streamed), read from a clone so the SDK's reading is untouched. */
  response: Promise<string>;
}

function recordingFetch(exchanges: Exchange[]): typeof fetch {
  return async (input, init) => {
    const response = await fetch(input, init);
    exchanges.push({
      url: input instanceof Request ? input.url : String(input),
      request: typeof init?.body === "string" ? (JSON.parse(init.body) as Record<string, unknown>) : {},
      status: response.status,
      response: response.clone().text(),
    });
    return response;
  };
}

const weatherInput = z.object({ city: z.enum(["Oslo", "Lima", "Pune"]), celsius: z.boolean() });

/** Checks a tool input by hand (not with the zod schema the SDK already used), so the test does not trust the SDK. */
function assertWeatherInput(input: unknown): void {
  const value = input as Record<string, unknown>;
  assert.deepEqual(Object.keys(value).sort(), ["celsius", "city"]);
  assert.ok(["Oslo", "Lima", "Pune"].includes(value.city as string), `city ${String(value.city)}`);
  assert.equal(typeof value.celsius, "boolean");
}

const answerSchema = z.object({
  answer: z.enum(["yes", "no", "maybe"]),
  confident: z.boolean(),
  tags: z.array(z.enum(["a", "b"])).max(3),
});

describe("Vercel AI SDK (createOpenAICompatible) against freehold", () => {
  const files = temporaryDirectory();
  const exchanges: Exchange[] = [];
  let server: ServerProcess;
  let freehold: ReturnType<typeof createOpenAICompatible>;
  before(async () => {
    const tiny = join(files.path, "tiny.gguf");
    writeSyntheticModel(tiny, { preset: "tiny", quant: "q8_0", seed: 11 });
    server = await startServerProcess({ models: storiesModelMissing ? { tiny } : { tiny, stories: storiesModelPath } });
    freehold = createOpenAICompatible({
      baseURL: `${server.url}/v1`,
      name: "freehold",
      fetch: recordingFetch(exchanges),
    });
  });
  after(async () => {
    await server?.dispose();
    files.dispose();
  });

  const last = (): Exchange => {
    const exchange = exchanges.at(-1);
    if (!exchange) throw new Error("no request was made");
    return exchange;
  };

  test("generateText: the text, finishReason length and usage the SDK reads from a chat completion", {
    skip: storiesModelMissing,
  }, async () => {
    const result = await generateText({
      model: freehold("stories"),
      prompt: "Once upon a time",
      maxOutputTokens: 10,
      temperature: 0,
      maxRetries: 0,
    });
    assert.ok(result.text.length > 0);
    assert.equal(result.finishReason, "length");
    assert.equal(result.rawFinishReason, "length");
    assert.ok((result.usage.inputTokens ?? 0) > 0, `inputTokens ${result.usage.inputTokens}`);
    assert.equal(result.usage.outputTokens, 10);
    assert.equal(result.usage.totalTokens, (result.usage.inputTokens ?? 0) + 10);
    assert.deepEqual(result.warnings, []);
    const exchange = last();
    assert.equal(exchange.url, `${server.url}/v1/chat/completions`);
    assert.equal(exchange.status, 200);
    assert.equal(exchange.request.max_tokens, 10);
    const body = JSON.parse(await exchange.response) as { choices: { message: { content: string } }[] };
    assert.equal(body.choices[0]!.message.content, result.text);
  });

  test("streamText: the text chunks join to the generateText answer (temperature 0, same seed); the stream finishes", {
    skip: storiesModelMissing,
  }, async () => {
    const settings = { prompt: "Once upon a time", maxOutputTokens: 40, temperature: 0, seed: 7, maxRetries: 0 };
    const whole = await generateText({ model: freehold("stories"), ...settings });
    const errors: unknown[] = [];
    const stream = streamText({ model: freehold("stories"), ...settings, onError: ({ error }) => errors.push(error) });
    const chunks: string[] = [];
    for await (const chunk of stream.textStream) chunks.push(chunk);
    assert.deepEqual(errors, []);
    assert.ok(chunks.length > 1, `${chunks.length} chunks`);
    assert.equal(chunks.join(""), whole.text);
    assert.equal(await stream.text, whole.text);
    assert.equal(await stream.finishReason, whole.finishReason);
    const exchange = last();
    assert.equal(exchange.request.stream, true);
    assert.equal(exchange.request.seed, 7);
    assert.ok((await exchange.response).trimEnd().endsWith("data: [DONE]"));
  });

  test("streamText with includeUsage: usage numbers arrive in the last chunk and match the non-streamed ones", {
    skip: storiesModelMissing,
  }, async () => {
    const withUsage = createOpenAICompatible({ baseURL: `${server.url}/v1`, name: "freehold", includeUsage: true });
    const settings = { prompt: "Once upon a time", maxOutputTokens: 12, temperature: 0, maxRetries: 0 };
    const whole = await generateText({ model: withUsage("stories"), ...settings });
    const stream = streamText({ model: withUsage("stories"), ...settings });
    await stream.consumeStream();
    const usage = await stream.usage;
    assert.equal(usage.inputTokens, whole.usage.inputTokens);
    assert.equal(usage.outputTokens, 12);
    assert.equal(usage.totalTokens, whole.usage.totalTokens);
    assert.equal(await stream.finishReason, "length");
  });

  test("toolChoice naming a tool: the SDK gets a call to it whose parsed input matches the schema", async () => {
    const tools = {
      get_weather: tool({ description: "Current weather for a city", inputSchema: weatherInput }),
      get_time: tool({ inputSchema: z.object({ zone: z.enum(["UTC", "CET"]) }) }),
    };
    const result = await generateText({
      model: freehold("tiny"),
      prompt: "What is the weather in Oslo?",
      tools,
      toolChoice: { type: "tool", toolName: "get_weather" },
      temperature: 0.7,
      seed: 3,
      maxOutputTokens: 100,
      maxRetries: 0,
    });
    assert.equal(result.finishReason, "tool-calls");
    assert.equal(result.toolCalls.length, 1);
    const call = result.toolCalls[0]!;
    assert.equal(call.toolName, "get_weather");
    assert.equal(call.invalid, undefined);
    assertWeatherInput(call.input);
    assert.equal(result.toolResults.length, 0, "no execute, so no result");
    const exchange = last();
    assert.deepEqual(exchange.request.tool_choice, { type: "function", function: { name: "get_weather" } });
    const body = JSON.parse(await exchange.response) as {
      choices: {
        finish_reason: string;
        message: { tool_calls: { id: string; function: { name: string; arguments: string } }[] };
      }[];
    };
    const wire = body.choices[0]!;
    assert.equal(wire.finish_reason, "tool_calls");
    assert.equal(wire.message.tool_calls[0]!.id, call.toolCallId);
    assert.deepEqual(JSON.parse(wire.message.tool_calls[0]!.function.arguments), call.input);
  });

  test("a forced tool call with execute runs it once (one step); streamed, the call arrives whole", async () => {
    const seen: unknown[] = [];
    const tools = {
      get_weather: tool({
        description: "Current weather for a city",
        inputSchema: weatherInput,
        execute: async (input) => {
          seen.push(input);
          return { temperature: 21 };
        },
      }),
    };
    const settings = {
      prompt: "Weather?",
      tools,
      toolChoice: { type: "tool", toolName: "get_weather" } as const,
      stopWhen: stepCountIs(1),
      temperature: 0.7,
      seed: 5,
      maxOutputTokens: 100,
      maxRetries: 0,
    };
    const result = await generateText({ model: freehold("tiny"), ...settings });
    assert.equal(result.steps.length, 1);
    assert.equal(seen.length, 1);
    assertWeatherInput(seen[0]);
    assert.equal(result.toolResults.length, 1);
    assert.deepEqual(result.toolResults[0]!.output, { temperature: 21 });
    assert.deepEqual(result.toolResults[0]!.input, result.toolCalls[0]!.input);

    const stream = streamText({ model: freehold("tiny"), ...settings });
    const kinds: string[] = [];
    for await (const part of stream.fullStream) kinds.push(part.type);
    const calls = await stream.toolCalls;
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.toolName, "get_weather");
    assertWeatherInput(calls[0]!.input);
    assert.deepEqual(calls[0]!.input, result.toolCalls[0]!.input, "same seed, same call, streamed or not");
    assert.ok(kinds.includes("tool-input-delta"), kinds.join(","));
    assert.ok(kinds.includes("tool-result"), kinds.join(","));
    assert.ok(!kinds.includes("error"), kinds.join(","));
    assert.equal(await stream.finishReason, "tool-calls");
  });

  test("Output.object with supportsStructuredOutputs: the answer parses and matches the zod schema", async () => {
    const structured = createOpenAICompatible({
      baseURL: `${server.url}/v1`,
      name: "freehold",
      supportsStructuredOutputs: true,
      fetch: recordingFetch(exchanges),
    });
    const model = storiesModelMissing ? "tiny" : "stories";
    for (const seed of [1, 2]) {
      const result = await generateText({
        model: structured(model),
        prompt: "Is the sky blue?",
        output: Output.object({ schema: answerSchema, name: "answer" }),
        temperature: 0.8,
        seed,
        maxOutputTokens: 120,
        maxRetries: 0,
      });
      assert.equal(result.finishReason, "stop");
      const value = result.output;
      assert.ok(["yes", "no", "maybe"].includes(value.answer));
      assert.equal(typeof value.confident, "boolean");
      assert.ok(value.tags.length <= 3 && value.tags.every((tag) => tag === "a" || tag === "b"));
      const format = last().request.response_format as { type: string; json_schema: { name: string } };
      assert.equal(format.type, "json_schema");
      assert.equal(format.json_schema.name, "answer");
      assert.deepEqual(JSON.parse(result.text), value);
    }
  });

  test("without supportsStructuredOutputs the SDK asks for json_object; Output.json's answer parses", async () => {
    // json_object constrains the answer to an object of any shape, so a tiny model may wander on without ever closing
    // it; the synthetic model at temperature 0 closes it at once, which is what this test needs.
    const result = await generateText({
      model: freehold("tiny"),
      prompt: "Answer in JSON.",
      output: Output.json(),
      temperature: 0,
      maxOutputTokens: 300,
      maxRetries: 0,
    });
    assert.deepEqual(last().request.response_format, { type: "json_object" });
    assert.equal(result.finishReason, "stop");
    assert.equal(typeof result.output, "object");
    assert.deepEqual(result.output, JSON.parse(result.text));
  });

  test("providerOptions under the provider's name reach the server: ignore_eos, top_k", {
    skip: storiesModelMissing,
  }, async () => {
    const result = await generateText({
      model: freehold("stories"),
      prompt: "Once upon a time",
      maxOutputTokens: 30,
      temperature: 0,
      providerOptions: { freehold: { ignore_eos: true, top_k: 1 } },
      maxRetries: 0,
    });
    assert.equal(last().request.ignore_eos, true);
    assert.equal(last().request.top_k, 1);
    assert.equal(result.finishReason, "length");
    assert.equal(result.usage.outputTokens, 30);
  });

  test("embed and embedMany: normalised vectors, the same for the same text, usage counted", {
    skip: storiesModelMissing,
  }, async () => {
    const model = freehold.embeddingModel("stories");
    const one = await embed({ model, value: "a little girl", maxRetries: 0 });
    assert.equal(one.embedding.length, 64);
    const norm = Math.sqrt(one.embedding.reduce((sum, v) => sum + v * v, 0));
    assert.ok(Math.abs(norm - 1) < 1e-4, `norm ${norm}`);
    assert.equal(one.usage.tokens, 6, 'BOS + the 5 tokens of "a little girl"');
    const many = await embedMany({ model, values: ["a little girl", "a big dog"], maxRetries: 0 });
    assert.equal(many.embeddings.length, 2);
    for (const [i, value] of one.embedding.entries()) assert.ok(Math.abs(value - many.embeddings[0]![i]!) < 1e-5);
    assert.notDeepEqual(many.embeddings[0], many.embeddings[1]);
    assert.ok(many.usage.tokens > one.usage.tokens);
    assert.equal(last().url, `${server.url}/v1/embeddings`);
  });

  test("an unknown model: the SDK throws an APICallError with status 404 and our message", async () => {
    const isOurs = (error: unknown) => {
      assert.ok(APICallError.isInstance(error), `not an APICallError: ${String(error)}`);
      assert.equal(error.statusCode, 404);
      assert.match(error.message, /nope/);
      assert.equal(error.isRetryable, false);
      const body = JSON.parse(error.responseBody ?? "{}") as { error: { code: string; message: string } };
      assert.equal(body.error.code, "model_not_found");
      assert.equal(error.message, body.error.message);
      return true;
    };
    await assert.rejects(generateText({ model: freehold("nope"), prompt: "x", maxRetries: 0 }), isOurs);
    await assert.rejects(embed({ model: freehold.embeddingModel("nope"), value: "x", maxRetries: 0 }), isOurs);
    const errors: unknown[] = [];
    const stream = streamText({
      model: freehold("nope"),
      prompt: "x",
      maxRetries: 0,
      onError: ({ error }) => errors.push(error),
    });
    await stream.consumeStream();
    assert.equal(errors.length, 1);
    isOurs(errors[0]);
  });
});
