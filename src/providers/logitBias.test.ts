import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ChatEvent, GenerateRequest } from "../core/chat.js";
import type { PreparedCall } from "../core/egress.js";
import { InvalidRequestError } from "../core/errors.js";
import { AnthropicProvider } from "./anthropic.js";
import { OllamaProvider } from "./ollama.js";
import { openAIRequestBody } from "./openaiWire.js";

const request: GenerateRequest = {
  kind: "chat",
  model: "m",
  messages: [{ role: "user", content: "hi" }],
  sampling: { logitBias: { "42": -100, "7": 3.5 } },
  limits: {},
};

async function drain(events: AsyncIterable<ChatEvent>): Promise<unknown> {
  try {
    for await (const _ of events) {
      // an error is expected before any event
    }
  } catch (error) {
    return error;
  }
  return undefined;
}

describe("logit_bias through a route", () => {
  test("an OpenAI-compatible provider gets it as sent (the ids are its model's)", () => {
    assert.deepEqual(openAIRequestBody(request, "up").logit_bias, { "42": -100, "7": 3.5 });
    assert.equal("logit_bias" in openAIRequestBody({ ...request, sampling: {} }, "up"), false);
  });

  test("Anthropic and Ollama providers have none: a 400 naming logit_bias, and nothing is sent", async () => {
    const providers = [
      new AnthropicProvider({ name: "claude", baseUrl: "http://127.0.0.1:9" }),
      new OllamaProvider({ name: "ollama", baseUrl: "http://127.0.0.1:9" }),
    ];
    for (const provider of providers) {
      const call: PreparedCall<AsyncIterable<ChatEvent>> = provider.prepareGenerate(request);
      assert.ok(call.outgoing === null, "nothing leaves");
      const error = await drain(call.run());
      assert.ok(error instanceof InvalidRequestError);
      assert.equal((error as InvalidRequestError).param, "logit_bias");
    }
  });
});
