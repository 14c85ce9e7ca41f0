import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ModelCatalog, ModelControl } from "../src/core/catalog.js";
import type { ChatEvent, ModelPort } from "../src/core/chat.js";
import {
  type FreeholdError,
  OverloadedError,
  RateLimitError,
  ServerError,
  UnavailableError,
} from "../src/core/errors.js";
import { Gateway } from "../src/gateway/gateway.js";
import { createApp } from "../src/http/app.js";
import { UpstreamError } from "../src/providers/upstream.js";

/**
 * Issue 19's one error path: whatever refuses a request with a retry time (a key's limit, a full queue, the control
 * plane away, an upstream's own Retry-After), every API answers it with its status, its own error shape, and a
 * Retry-After header in whole seconds, streamed or not.
 */
function appFailingWith(error: FreeholdError) {
  const fail = () => {
    throw error;
  };
  const port: ModelPort = {
    // biome-ignore lint/correctness/useYield: it fails before its first event, as a refusal does
    async *generate(): AsyncIterable<ChatEvent> {
      throw error;
    },
    embed: async () => fail(),
    listModels: async () => fail(),
    countTokens: async () => fail(),
  };
  const unused = () => {
    throw new Error("not called");
  };
  return createApp({
    gateway: new Gateway(port),
    health: { health: () => ({ ready: true, status: "ok", detail: {} }) },
    loadedModels: { loadedModels: () => [] },
    models: { load: async () => {}, unload: async () => false } as unknown as ModelControl,
    catalog: { list: unused, describe: unused, copy: unused, remove: unused } as ModelCatalog,
    listenHost: "127.0.0.1",
    allowedHosts: [],
    maxBodyBytes: 1 << 20,
    version: "0.0.0",
  });
}

const messages = [{ role: "user", content: "hi" }];
type Shape = "openai" | "anthropic" | "ollama";
const calls: { name: string; shape: Shape; method?: string; path: string; body?: unknown; headers?: object }[] = [
  { name: "OpenAI chat", shape: "openai", path: "/v1/chat/completions", body: { model: "m", messages } },
  {
    name: "OpenAI chat, streamed",
    shape: "openai",
    path: "/v1/chat/completions",
    body: { model: "m", messages, stream: true },
  },
  { name: "OpenAI completions", shape: "openai", path: "/v1/completions", body: { model: "m", prompt: "hi" } },
  {
    name: "OpenAI completions, streamed",
    shape: "openai",
    path: "/v1/completions",
    body: { model: "m", prompt: "hi", stream: true },
  },
  { name: "OpenAI embeddings", shape: "openai", path: "/v1/embeddings", body: { model: "m", input: "hi" } },
  { name: "OpenAI models", shape: "openai", method: "GET", path: "/v1/models" },
  { name: "Responses", shape: "openai", path: "/v1/responses", body: { model: "m", input: "hi" } },
  {
    name: "Responses, streamed",
    shape: "openai",
    path: "/v1/responses",
    body: { model: "m", input: "hi", stream: true },
  },
  {
    name: "Anthropic messages",
    shape: "anthropic",
    path: "/v1/messages",
    body: { model: "m", max_tokens: 5, messages },
  },
  {
    name: "Anthropic messages, streamed",
    shape: "anthropic",
    path: "/v1/messages",
    body: { model: "m", max_tokens: 5, messages, stream: true },
  },
  {
    name: "Anthropic count_tokens",
    shape: "anthropic",
    path: "/v1/messages/count_tokens",
    body: { model: "m", messages },
  },
  {
    name: "Anthropic models (the shared path, by its header)",
    shape: "anthropic",
    method: "GET",
    path: "/v1/models",
    headers: { "anthropic-version": "2023-06-01" },
  },
  { name: "Ollama chat", shape: "ollama", path: "/api/chat", body: { model: "m", messages, stream: false } },
  { name: "Ollama chat, streamed", shape: "ollama", path: "/api/chat", body: { model: "m", messages } },
  { name: "Ollama generate", shape: "ollama", path: "/api/generate", body: { model: "m", prompt: "hi" } },
  { name: "Ollama embed", shape: "ollama", path: "/api/embed", body: { model: "m", input: "hi" } },
];

/** The message of an error body in each API's shape, or a failure naming the shape it is not. */
function messageOf(shape: Shape, body: Record<string, unknown>): string {
  if (shape === "ollama") {
    assert.equal(typeof body.error, "string", `Ollama's {"error": "…"}: ${JSON.stringify(body)}`);
    return body.error as string;
  }
  if (shape === "anthropic") assert.equal(body.type, "error", `Anthropic's {"type": "error"}: ${JSON.stringify(body)}`);
  const error = body.error as { message?: unknown; code?: unknown } | undefined;
  assert.equal(typeof error?.message, "string", JSON.stringify(body));
  if (shape === "openai") assert.ok("code" in error!, `OpenAI's error has a code: ${JSON.stringify(body)}`);
  return error!.message as string;
}

const refusals: { error: FreeholdError; header: string }[] = [
  { error: new RateLimitError("over the key's requests per minute", "rate_limit_exceeded", 7), header: "7" },
  { error: new OverloadedError("the queue is full", "queue_full", 3), header: "3" },
  { error: new UnavailableError("the control plane's database is unreachable"), header: "1" },
  {
    error: new UpstreamError("provider p: 429", {
      status: 429,
      code: "upstream_429",
      retryable: true,
      retryAfterSeconds: 2.5,
    }),
    header: "3",
  },
];

for (const { error, header } of refusals) {
  describe(`${error.constructor.name} ${error.status}: Retry-After ${header} on every API`, () => {
    const app = appFailingWith(error);
    for (const call of calls) {
      test(call.name, async () => {
        const response = await app.request(call.path, {
          method: call.method ?? "POST",
          headers: { "content-type": "application/json", ...call.headers },
          ...(call.body ? { body: JSON.stringify(call.body) } : {}),
        });
        assert.equal(response.status, error.status);
        assert.equal(response.headers.get("retry-after"), header);
        assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
        assert.equal(messageOf(call.shape, (await response.json()) as Record<string, unknown>), error.message);
      });
    }
  });
}

describe("an error without a retry time has no Retry-After", () => {
  const app = appFailingWith(new ServerError("the runner failed", "runner_error", false));
  for (const call of calls) {
    test(call.name, async () => {
      const response = await app.request(call.path, {
        method: call.method ?? "POST",
        headers: { "content-type": "application/json", ...call.headers },
        ...(call.body ? { body: JSON.stringify(call.body) } : {}),
      });
      assert.equal(response.status, 500);
      assert.equal(response.headers.get("retry-after"), null);
      messageOf(call.shape, (await response.json()) as Record<string, unknown>);
    });
  }
});
