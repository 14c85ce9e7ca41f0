import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { parseFileConfig } from "../src/config/fileConfig.js";
import type { ChatEvent, ModelPort } from "../src/core/chat.js";
import { Gateway } from "../src/gateway/gateway.js";
import { Router } from "../src/routing/router.js";
import { buildRoutingTable } from "../src/routing/table.js";
import { gatewayApp, postJsonTo } from "./helpers/inProcessApp.js";

/**
 * Reasoning through routes to remote providers: scripted upstreams on loopback speak each wire format with its
 * own reasoning fields (OpenAI-compatible `reasoning_content` or `reasoning`, Anthropic `thinking` blocks with a
 * signature, Ollama `message.thinking`), and every client API shows that reasoning in its own field, apart from the
 * answer. The client's budget reaches each upstream in the field its API has (docs/reasoning.md).
 */

const THOUGHT = ["First, ", "the capital."];
const ANSWER = ["Par", "is."];
const SIGNATURE = "sig-EqQBCgIYAhIM1gbcDa9GJwZA";

interface Received {
  path: string;
  body: Record<string, unknown>;
}

function sse(frames: unknown[], named = false): string {
  return frames
    .map((frame) => {
      const data = JSON.stringify(frame);
      const type = (frame as { type?: string }).type;
      return named && type ? `event: ${type}\ndata: ${data}\n\n` : `data: ${data}\n\n`;
    })
    .join("");
}

/** OpenAI-compatible: the reasoning in `field` (reasoning_content, or reasoning as OpenRouter and vLLM send it). */
function openAIAnswer(body: Record<string, unknown>, field: "reasoning_content" | "reasoning"): [string, string] {
  if (body.stream === false)
    return [
      "application/json",
      JSON.stringify({
        id: "x",
        object: "chat.completion",
        choices: [
          {
            index: 0,
            message: { role: "assistant", content: ANSWER.join(""), [field]: THOUGHT.join("") },
            finish_reason: "stop",
          },
        ],
        usage: { prompt_tokens: 5, completion_tokens: 9 },
      }),
    ];
  const choice = (delta: object, finish: string | null = null) => ({
    id: "x",
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  return [
    "text/event-stream",
    `${sse([
      choice({ role: "assistant", content: null }),
      ...THOUGHT.map((text) => choice({ [field]: text })),
      ...ANSWER.map((text) => choice({ content: text })),
      choice({}, "stop"),
      { id: "x", object: "chat.completion.chunk", choices: [], usage: { prompt_tokens: 5, completion_tokens: 9 } },
    ])}data: [DONE]\n\n`,
  ];
}

/** Anthropic: a thinking block (deltas, then its signature), then the text block, as Anthropic streams them. */
function anthropicAnswer(): [string, string] {
  return [
    "text/event-stream",
    sse(
      [
        { type: "message_start", message: { id: "msg", usage: { input_tokens: 5, output_tokens: 0 } } },
        { type: "content_block_start", index: 0, content_block: { type: "thinking", thinking: "", signature: "" } },
        ...THOUGHT.map((thinking) => ({
          type: "content_block_delta",
          index: 0,
          delta: { type: "thinking_delta", thinking },
        })),
        { type: "content_block_delta", index: 0, delta: { type: "signature_delta", signature: SIGNATURE } },
        { type: "content_block_stop", index: 0 },
        { type: "content_block_start", index: 1, content_block: { type: "redacted_thinking", data: "c2VjcmV0" } },
        { type: "content_block_stop", index: 1 },
        { type: "content_block_start", index: 2, content_block: { type: "text", text: "" } },
        ...ANSWER.map((text) => ({ type: "content_block_delta", index: 2, delta: { type: "text_delta", text } })),
        { type: "content_block_stop", index: 2 },
        { type: "message_delta", delta: { stop_reason: "end_turn" }, usage: { output_tokens: 9 } },
        { type: "message_stop" },
      ],
      true,
    ),
  ];
}

/** Ollama: message.thinking lines, then message.content lines, then done. */
function ollamaAnswer(): [string, string] {
  const line = (message: object, done = false) =>
    JSON.stringify({
      model: "m",
      message: { role: "assistant", content: "", ...message },
      done,
      ...(done ? { done_reason: "stop", prompt_eval_count: 5, eval_count: 9 } : {}),
    });
  return [
    "application/x-ndjson",
    `${[
      ...THOUGHT.map((thinking) => line({ thinking })),
      ...ANSWER.map((content) => line({ content })),
      line({}, true),
    ].join("\n")}\n`,
  ];
}

async function startScriptedUpstream(): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((request, response) => {
    let raw = "";
    request.on("data", (chunk) => {
      raw += chunk;
    });
    request.on("end", () => {
      const body = JSON.parse(raw || "{}") as Record<string, unknown>;
      received.push({ path: request.url ?? "", body });
      const [type, text] =
        request.url === "/v1/messages"
          ? anthropicAnswer()
          : request.url === "/api/chat"
            ? ollamaAnswer()
            : openAIAnswer(body, body.model === "m-reasoning" ? "reasoning" : "reasoning_content");
      response.writeHead(200, { "content-type": type });
      response.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received, server };
}

class NoLocal implements ModelPort {
  // biome-ignore lint/correctness/useYield: every model here is routed to a provider; reaching this is a bug.
  async *generate(): AsyncGenerator<ChatEvent> {
    throw new Error("the local engine was reached");
  }
  async embed(): Promise<never> {
    throw new Error("not called");
  }
  async listModels() {
    return [];
  }
  async countTokens() {
    return 0;
  }
}

/** Each route, and the provider kind behind it. */
const routes = {
  "openai-reasoning-content": "openai",
  "openai-reasoning": "openai",
  anthropic: "anthropic",
  ollama: "ollama",
} as const;
type RouteName = keyof typeof routes;

describe("reasoning through routes to remote providers", () => {
  let upstream: Awaited<ReturnType<typeof startScriptedUpstream>>;
  let app: ReturnType<typeof gatewayApp>;

  before(async () => {
    upstream = await startScriptedUpstream();
    const yaml = `
providers:
  openai: { kind: openai, base_url: "${upstream.url}/v1" }
  anthropic: { kind: anthropic, base_url: "${upstream.url}" }
  ollama: { kind: ollama, base_url: "${upstream.url}" }
routes:
  openai-reasoning-content: { privacy: allow, retries: 0, targets: [{ provider: openai, model: m-reasoning-content }] }
  openai-reasoning: { privacy: allow, retries: 0, targets: [{ provider: openai, model: m-reasoning }] }
  anthropic: { privacy: allow, retries: 0, targets: [{ provider: anthropic, model: m-anthropic }] }
  ollama: { privacy: allow, retries: 0, targets: [{ provider: ollama, model: m-ollama }] }
`;
    const router = new Router(buildRoutingTable(parseFileConfig(yaml, "reasoning.yaml", {}), new NoLocal(), false));
    app = gatewayApp(new Gateway(new NoLocal(), router));
  });
  after(async () => {
    await new Promise((resolve) => upstream?.server.close(resolve));
  });

  const post = (path: string, body: unknown) => postJsonTo(app, path, body);
  const ask = [{ role: "user", content: "The capital of France?" }];
  const dataFrames = async (response: Response) =>
    (await response.text())
      .split("\n")
      .filter((line) => line.startsWith("data: ") && line !== "data: [DONE]")
      .map((line) => JSON.parse(line.slice(6)) as Record<string, unknown>);

  for (const route of Object.keys(routes) as RouteName[]) {
    test(`${route}: OpenAI chat shows reasoning_content, streamed and not`, async () => {
      const whole = await post("/v1/chat/completions", { model: route, messages: ask });
      assert.equal(whole.status, 200, await whole.clone().text());
      const message = ((await whole.json()) as { choices: { message: Record<string, unknown> }[] }).choices[0]!.message;
      assert.equal(message.reasoning_content, THOUGHT.join(""));
      assert.equal(message.content, ANSWER.join(""));
      const frames = await dataFrames(
        await post("/v1/chat/completions", { model: route, messages: ask, stream: true }),
      );
      const deltas = frames.map(
        (frame) => (frame.choices as { delta: Record<string, string> }[] | undefined)?.[0]?.delta ?? {},
      );
      assert.equal(deltas.map((delta) => delta.reasoning_content ?? "").join(""), THOUGHT.join(""));
      assert.equal(deltas.map((delta) => delta.content ?? "").join(""), ANSWER.join(""));
      assert.ok(
        deltas.findLastIndex((delta) => delta.reasoning_content) < deltas.findIndex((delta) => delta.content),
        "the reasoning comes before the answer",
      );
    });

    test(`${route}: Anthropic messages show a thinking block, streamed and not`, async () => {
      const request = { model: route, max_tokens: 200, messages: ask };
      const whole = await post("/v1/messages", request);
      assert.equal(whole.status, 200, await whole.clone().text());
      const content = ((await whole.json()) as { content: Record<string, string>[] }).content;
      assert.deepEqual(
        content.map((block) => block.type),
        ["thinking", "text"],
      );
      assert.equal(content[0]!.thinking, THOUGHT.join(""));
      // The signature is the Anthropic upstream's own; other providers' reasoning has none to give.
      assert.equal(content[0]!.signature, routes[route] === "anthropic" ? SIGNATURE : "");
      assert.equal(content[1]!.text, ANSWER.join(""));
      const frames = await dataFrames(await post("/v1/messages", { ...request, stream: true }));
      const deltas = frames
        .filter((frame) => frame.type === "content_block_delta")
        .map((frame) => frame.delta as Record<string, string>);
      assert.equal(
        deltas.map((delta) => delta.thinking ?? "").join(""),
        THOUGHT.join(""),
        "thinking_delta frames carry the reasoning",
      );
      assert.equal(deltas.map((delta) => delta.text ?? "").join(""), ANSWER.join(""));
      const signatures = deltas.filter((delta) => delta.type === "signature_delta").map((delta) => delta.signature);
      assert.deepEqual(signatures, routes[route] === "anthropic" ? [SIGNATURE] : []);
    });

    test(`${route}: Ollama chat shows message.thinking, streamed and not; Responses a reasoning item`, async () => {
      const whole = await post("/api/chat", { model: route, messages: ask, stream: false });
      assert.equal(whole.status, 200, await whole.clone().text());
      const message = ((await whole.json()) as { message: Record<string, string> }).message;
      assert.equal(message.thinking, THOUGHT.join(""));
      assert.equal(message.content, ANSWER.join(""));
      const lines = (await (await post("/api/chat", { model: route, messages: ask })).text())
        .split("\n")
        .filter((line) => line.trim())
        .map((line) => (JSON.parse(line) as { message?: Record<string, string> }).message ?? {});
      assert.equal(lines.map((line) => line.thinking ?? "").join(""), THOUGHT.join(""));
      assert.equal(lines.map((line) => line.content ?? "").join(""), ANSWER.join(""));

      const response = await post("/v1/responses", { model: route, input: "The capital of France?" });
      assert.equal(response.status, 200, await response.clone().text());
      const output = ((await response.json()) as { output: { type: string; content: { text: string }[] }[] }).output;
      assert.deepEqual(
        output.map((item) => item.type),
        ["reasoning", "message"],
      );
      assert.equal(output[0]!.content.map((part) => part.text).join(""), THOUGHT.join(""));
      assert.equal(output[1]!.content.map((part) => part.text).join(""), ANSWER.join(""));
    });
  }

  /** The last body the upstream received for `route`'s provider. */
  const lastBody = (route: RouteName) => {
    const path = { openai: "/v1/chat/completions", anthropic: "/v1/messages", ollama: "/api/chat" }[routes[route]];
    return upstream.received.filter((entry) => entry.path === path).at(-1)!.body;
  };
  const forwarded = (route: RouteName) => {
    const body = lastBody(route);
    return { reasoning_effort: body.reasoning_effort, thinking: body.thinking, think: body.think };
  };

  test("a budget reaches each provider in its own field: level, budget_tokens or think", async () => {
    // Each client's way of asking, and what each provider gets: [OpenAI-compatible, Anthropic, Ollama].
    const cases: { path: string; field: object; expect: [unknown, unknown, unknown] }[] = [
      { path: "/v1/chat/completions", field: {}, expect: [undefined, undefined, undefined] },
      {
        path: "/v1/chat/completions",
        field: { reasoning_effort: "low" },
        expect: ["low", { type: "enabled", budget_tokens: 1024 }, "low"],
      },
      {
        path: "/v1/chat/completions",
        field: { reasoning_effort: "minimal" },
        // Anthropic's minimum budget is 1024; Ollama has no "minimal" level (a plain true).
        expect: ["minimal", { type: "enabled", budget_tokens: 1024 }, true],
      },
      {
        path: "/v1/chat/completions",
        field: { reasoning_effort: "none" },
        expect: ["none", { type: "disabled" }, false],
      },
      {
        path: "/v1/responses",
        field: { reasoning: { effort: "high" } },
        expect: ["high", { type: "enabled", budget_tokens: 16384 }, "high"],
      },
      {
        path: "/v1/messages",
        field: { thinking: { type: "enabled", budget_tokens: 2000 } },
        // 2000 tokens: the smallest level that covers it is medium (4096); Ollama takes no token count.
        expect: ["medium", { type: "enabled", budget_tokens: 2000 }, true],
      },
      {
        path: "/v1/messages",
        field: { thinking: { type: "disabled" } },
        expect: ["none", { type: "disabled" }, false],
      },
      { path: "/v1/messages", field: { thinking: { type: "adaptive" } }, expect: [undefined, undefined, true] },
      { path: "/api/chat", field: { think: true }, expect: [undefined, undefined, true] },
      { path: "/api/chat", field: { think: false }, expect: ["none", { type: "disabled" }, false] },
      {
        path: "/api/chat",
        field: { think: "medium" },
        expect: ["medium", { type: "enabled", budget_tokens: 4096 }, "medium"],
      },
    ];
    const targets: RouteName[] = ["openai-reasoning-content", "anthropic", "ollama"];
    for (const { path, field, expect } of cases) {
      for (const [index, route] of targets.entries()) {
        const body =
          path === "/v1/responses"
            ? { model: route, input: "hi", max_output_tokens: 20000, ...field }
            : path === "/api/chat"
              ? { model: route, messages: ask, stream: false, options: { num_predict: 20000 }, ...field }
              : { model: route, messages: ask, max_tokens: 20000, ...field };
        const response = await post(path, body);
        assert.equal(response.status, 200, `${path} ${JSON.stringify(field)} → ${route}: ${await response.text()}`);
        const sent = forwarded(route);
        const key = (["reasoning_effort", "thinking", "think"] as const)[index]!;
        assert.deepEqual(sent[key], expect[index], `${path} ${JSON.stringify(field)} → ${route}: ${key}`);
        // No provider gets another API's field.
        for (const other of ["reasoning_effort", "thinking", "think"] as const)
          if (other !== key) assert.equal(sent[other], undefined, `${route} got ${other}`);
      }
    }
  });

  test("Anthropic upstream: a thinking budget not below max_tokens is refused naming max_tokens; nothing is sent", async () => {
    const before = upstream.received.length;
    for (const [path, body] of [
      ["/v1/chat/completions", { model: "anthropic", messages: ask, max_tokens: 1024, reasoning_effort: "low" }],
      // "minimal" (256 tokens) is raised to Anthropic's 1024 minimum, which 500 max_tokens cannot hold.
      ["/v1/chat/completions", { model: "anthropic", messages: ask, max_tokens: 500, reasoning_effort: "minimal" }],
      [
        "/v1/messages",
        { model: "anthropic", messages: ask, max_tokens: 3000, thinking: { type: "enabled", budget_tokens: 3000 } },
      ],
    ] as const) {
      const response = await post(path, body);
      assert.equal(response.status, 400, await response.clone().text());
      const text = await response.text();
      assert.match(text, /max_tokens/);
      assert.match(text, /thinking budget/);
    }
    assert.equal(upstream.received.length, before, "nothing reached the provider");
  });

  test("a completion (raw text) forwards no reasoning field", async () => {
    const response = await post("/v1/completions", { model: "openai-reasoning-content", prompt: "hi" });
    assert.equal(response.status, 200);
    const body = upstream.received.filter((entry) => entry.path === "/v1/completions").at(-1)!.body;
    assert.equal(body.reasoning_effort, undefined);
  });
});
