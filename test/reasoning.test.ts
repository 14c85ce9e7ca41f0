import assert from "node:assert/strict";
import { describe, test } from "node:test";
import Anthropic from "@anthropic-ai/sdk";
import OpenAI from "openai";
import { type ChatEvent, type GenerateRequest, type ModelPort, REASONING_EFFORT_BUDGETS } from "../src/core/chat.js";
import { Gateway } from "../src/gateway/gateway.js";
import { registerAnthropicRoutes } from "../src/http/anthropic/routes.js";
import { registerOllamaRoutes } from "../src/http/ollama/routes.js";
import { registerOpenAIRoutes } from "../src/http/openai/routes.js";
import { registerResponsesRoutes } from "../src/http/responses/routes.js";
import { apiRoutesApp, postJsonTo } from "./helpers/inProcessApp.js";

/**
 * Every API's reasoning shape, streamed and not, on a stand-in model that reasons (a tiny real model cannot): it
 * answers with the events the runner's token loop makes of `<think>Let me think.</think>Paris.` (that split is
 * tested on token streams in src/engine/runner/reasoning.test.ts). It records each request, to check the budgets.
 */
function standIn() {
  const requests: GenerateRequest[] = [];
  const port: ModelPort = {
    generate: async function* (request): AsyncGenerator<ChatEvent> {
      requests.push(request);
      yield { type: "reasoning", text: "Let me " };
      yield { type: "reasoning", text: "think." };
      yield { type: "text-delta", text: "Paris." };
      yield { type: "usage", usage: { promptTokens: 5, completionTokens: 9 } };
      yield { type: "finish", reason: "stop" };
    },
    countTokens: async () => 5,
    embed: () => Promise.reject(new Error("not used")),
    listModels: () => Promise.resolve([]),
  };
  const gateway = new Gateway(port);
  const app = apiRoutesApp((routes) => {
    registerOpenAIRoutes(routes, gateway);
    registerResponsesRoutes(routes, gateway);
    registerAnthropicRoutes(routes, gateway);
    registerOllamaRoutes(routes, { gateway, catalog: {} as never, models: {} as never, version: "0.0.0-test" });
  });
  const fetch = (input: string | URL | Request, init?: RequestInit) =>
    Promise.resolve(app.request(input instanceof Request ? input : String(input), init));
  const post = (path: string, body: unknown) => postJsonTo(app, path, body);
  return { requests, fetch, post };
}

const question = [{ role: "user" as const, content: "Capital of France?" }];

describe("reasoning in every API (a stand-in model that thinks)", () => {
  test("OpenAI chat: message.reasoning_content apart from content; reasoning_effort sets the budget", async () => {
    const { requests, fetch } = standIn();
    const client = new OpenAI({ baseURL: "http://local/v1", apiKey: "x", fetch: fetch as never });
    const answer = await client.chat.completions.create({
      model: "m",
      messages: question,
      reasoning_effort: "low",
    });
    const message = answer.choices[0]!.message as unknown as { content: string; reasoning_content: string };
    assert.equal(message.content, "Paris.");
    assert.equal(message.reasoning_content, "Let me think.");
    assert.deepEqual(requests[0]?.reasoning, { effort: "low", budgetTokens: REASONING_EFFORT_BUDGETS.low });
  });

  test("OpenAI chat streamed: delta.reasoning_content chunks before the content", async () => {
    const { fetch } = standIn();
    const client = new OpenAI({ baseURL: "http://local/v1", apiKey: "x", fetch: fetch as never });
    const stream = await client.chat.completions.create({ model: "m", messages: question, stream: true });
    const deltas: { reasoning_content?: string; content?: string }[] = [];
    for await (const chunk of stream) if (chunk.choices[0]) deltas.push(chunk.choices[0].delta as never);
    const reasoning = deltas.map((d) => d.reasoning_content ?? "").join("");
    const content = deltas.map((d) => d.content ?? "").join("");
    assert.equal(reasoning, "Let me think.");
    assert.equal(content, "Paris.");
    const firstContent = deltas.findIndex((d) => d.content);
    assert.ok(deltas.findLastIndex((d) => d.reasoning_content) < firstContent, "reasoning comes first");
  });

  test("OpenAI Responses: a reasoning item (reasoning_text) before the message; reasoning.effort sets the budget", async () => {
    const { requests, fetch } = standIn();
    const client = new OpenAI({ baseURL: "http://local/v1", apiKey: "x", fetch: fetch as never });
    const response = await client.responses.create({ model: "m", input: "Capital?", reasoning: { effort: "high" } });
    assert.deepEqual(
      response.output.map((item) => item.type),
      ["reasoning", "message"],
    );
    const reasoning = response.output[0] as { content?: { type: string; text: string }[]; summary: unknown[] };
    assert.deepEqual(reasoning.content, [{ type: "reasoning_text", text: "Let me think." }]);
    assert.deepEqual(reasoning.summary, []);
    assert.equal(response.output_text, "Paris.");
    assert.deepEqual(requests[0]?.reasoning, { effort: "high", budgetTokens: REASONING_EFFORT_BUDGETS.high });
  });

  test("OpenAI Responses streamed: response.reasoning_text.delta events, then the text; the final Response agrees", async () => {
    const { fetch } = standIn();
    const client = new OpenAI({ baseURL: "http://local/v1", apiKey: "x", fetch: fetch as never });
    const stream = await client.responses.create({ model: "m", input: "Capital?", stream: true });
    const types: string[] = [];
    let reasoning = "";
    let final: OpenAI.Responses.Response | undefined;
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.reasoning_text.delta") reasoning += event.delta;
      if (event.type === "response.completed") final = event.response;
    }
    assert.equal(reasoning, "Let me think.");
    assert.ok(types.indexOf("response.reasoning_text.done") < types.indexOf("response.output_text.delta"));
    assert.deepEqual(
      final?.output.map((item) => item.type),
      ["reasoning", "message"],
    );
    // A client sends the reasoning item back with the next turn: accepted, and kept out of the prompt.
    const next = await client.responses.create({
      model: "m",
      input: [...(final!.output as never[]), { role: "user", content: "And Spain?" }],
    });
    assert.equal(next.output_text, "Paris.");
  });

  test("Anthropic: a thinking block before the text; thinking.budget_tokens sets the budget, disabled closes it", async () => {
    const { requests, fetch } = standIn();
    const client = new Anthropic({ baseURL: "http://local", apiKey: "x", fetch: fetch as never });
    const message = await client.messages.create({
      model: "m",
      max_tokens: 2000,
      messages: question,
      thinking: { type: "enabled", budget_tokens: 1024 },
    });
    assert.deepEqual(
      message.content.map((block) => block.type),
      ["thinking", "text"],
    );
    assert.equal((message.content[0] as { thinking: string }).thinking, "Let me think.");
    assert.equal((message.content[1] as { text: string }).text, "Paris.");
    assert.deepEqual(requests[0]?.reasoning, { budgetTokens: 1024 });
    await client.messages.create({ model: "m", max_tokens: 20, messages: question, thinking: { type: "disabled" } });
    assert.deepEqual(requests[1]?.reasoning, { budgetTokens: 0 });
  });

  test("Anthropic streamed: thinking_delta events in a thinking block, then the text block; the SDK's message agrees", async () => {
    const { fetch } = standIn();
    const client = new Anthropic({ baseURL: "http://local", apiKey: "x", fetch: fetch as never });
    const stream = client.messages.stream({ model: "m", max_tokens: 50, messages: question });
    const deltas: string[] = [];
    stream.on("streamEvent", (event) => {
      if (event.type === "content_block_delta") deltas.push(event.delta.type);
    });
    const message = await stream.finalMessage();
    assert.deepEqual(deltas, ["thinking_delta", "thinking_delta", "text_delta"]);
    assert.deepEqual(
      message.content.map((block) => block.type),
      ["thinking", "text"],
    );
    assert.equal((message.content[0] as { thinking: string }).thinking, "Let me think.");
  });

  test("Ollama chat and generate: message.thinking / thinking, streamed and not; think sets the budget", async () => {
    const { requests, post } = standIn();
    const chat = (await (
      await post("/api/chat", { model: "m", messages: question, stream: false, think: "medium" })
    ).json()) as { message: { content: string; thinking: string } };
    assert.deepEqual(chat.message, { role: "assistant", content: "Paris.", thinking: "Let me think." });
    assert.deepEqual(requests[0]?.reasoning, { effort: "medium", budgetTokens: REASONING_EFFORT_BUDGETS.medium });

    const lines = (await (await post("/api/chat", { model: "m", messages: question, think: false })).text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { message: { content: string; thinking?: string } });
    assert.equal(lines.map((l) => l.message.thinking ?? "").join(""), "Let me think.");
    assert.equal(lines.map((l) => l.message.content).join(""), "Paris.");
    assert.deepEqual(requests[1]?.reasoning, { budgetTokens: 0 });

    const generated = (await (
      await post("/api/generate", { model: "m", prompt: "Capital?", stream: false })
    ).json()) as {
      response: string;
      thinking: string;
    };
    assert.equal(generated.response, "Paris.");
    assert.equal(generated.thinking, "Let me think.");
    assert.equal(requests[2]?.reasoning, undefined, "think left out: no budget");
    const streamed = (await (await post("/api/generate", { model: "m", prompt: "Capital?" })).text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { response: string; thinking?: string });
    assert.equal(streamed.map((l) => l.thinking ?? "").join(""), "Let me think.");
    assert.equal(streamed.map((l) => l.response).join(""), "Paris.");
  });

  test("bad budgets: 400 naming the field", async () => {
    const { post } = standIn();
    const cases: [string, unknown, string][] = [
      ["/v1/chat/completions", { model: "m", messages: question, reasoning_effort: "extreme" }, "reasoning_effort"],
      ["/v1/responses", { model: "m", input: "x", reasoning: { effort: "max" } }, "reasoning.effort"],
      ["/v1/responses", { model: "m", input: "x", reasoning: { summary: "auto" } }, "reasoning.summary"],
      ["/v1/messages", { model: "m", max_tokens: 5, messages: question, thinking: { type: "enabled" } }, "thinking"],
      [
        "/v1/messages",
        { model: "m", max_tokens: 5, messages: question, thinking: { type: "enabled", budget_tokens: 0 } },
        "thinking.budget_tokens",
      ],
      ["/api/chat", { model: "m", messages: question, think: "very" }, "think"],
    ];
    for (const [path, body, field] of cases) {
      const response = await post(path, body);
      assert.equal(response.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.match(await response.text(), new RegExp(field.replace(".", "\\.")), `${path} names ${field}`);
    }
  });
});
