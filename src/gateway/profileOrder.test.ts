import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ChatEvent, ChatRequest, GenerateRequest, ModelPort } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import type { Admission, MeterOutcome, MeterWork, RequestMeter } from "../core/metering.js";
import type { ModelProfile } from "../core/profile.js";
import { Gateway } from "./gateway.js";

/**
 * Issue 19's ordering bug: a profile's default max_tokens, system prompt and example messages were applied inside
 * the engine, after metering had bounded and reserved the request, so a key's reservation ignored them.
 */

const profile: ModelProfile = {
  system: "You are the support bot of ACME. ".repeat(20),
  limits: { maxTokens: 7 },
  messages: [
    { role: "user", content: "An example question, long enough to matter. ".repeat(10) },
    { role: "assistant", content: "An example answer. ".repeat(10) },
  ],
};

/** A key with a token ceiling of 100 per request: a request that sets no max_tokens gets the ceiling. */
class RecordingMeter implements RequestMeter {
  readonly admitted: MeterWork[] = [];
  readonly settled: MeterOutcome[] = [];
  async admit(work: MeterWork): Promise<Admission> {
    this.admitted.push(work);
    return {
      maxTokens: work.maxTokens ?? 100,
      settle: async (outcome) => {
        this.settled.push(outcome);
      },
    };
  }
}

class RecordingPort implements ModelPort {
  readonly requests: GenerateRequest[] = [];
  readonly counted: GenerateRequest[] = [];
  async *generate(request: GenerateRequest): AsyncGenerator<ChatEvent> {
    this.requests.push(request);
    yield { type: "text-delta", text: "hi" };
    yield { type: "usage", usage: { promptTokens: 3, completionTokens: 1 } };
    yield { type: "finish", reason: "stop" };
  }
  async embed(): Promise<never> {
    throw new Error("not used");
  }
  async listModels() {
    return [];
  }
  async countTokens(request: GenerateRequest): Promise<number> {
    this.counted.push(request);
    return 1;
  }
}

const context: RequestContext = { requestId: "r1", api: "openai", route: "/v1/chat/completions" };
const user = { role: "user" as const, content: "hello" };
const request: ChatRequest = { kind: "chat", model: "bot", messages: [user], sampling: {}, limits: {} };
const profiles = { profile: async (model: string) => (model === "bot" ? profile : undefined) };

async function drain(events: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const all: ChatEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

const bytes = (text: string) => Buffer.byteLength(text, "utf8");

describe("a profile is applied before metering", () => {
  test("the profile's default max_tokens is what is reserved and what the model is asked for", async () => {
    const port = new RecordingPort();
    const meter = new RecordingMeter();
    const gateway = new Gateway(port, undefined, meter, undefined, profiles);
    await drain(gateway.generate(request, context));
    assert.equal(meter.admitted.length, 1);
    assert.equal(meter.admitted[0]!.maxTokens, 7, "the reservation uses the profile's max_tokens");
    assert.equal(port.requests.length, 1);
    assert.equal(port.requests[0]!.limits.maxTokens, 7, "the key's ceiling must not replace the profile's default");
  });

  test("the profile's system prompt and examples count in the reserved prompt bound", async () => {
    const port = new RecordingPort();
    const meter = new RecordingMeter();
    const gateway = new Gateway(port, undefined, meter, undefined, profiles);
    await drain(gateway.generate(request, context));
    const added = bytes(profile.system!) + profile.messages!.reduce((sum, m) => sum + bytes(m.content), 0);
    assert.ok(
      meter.admitted[0]!.promptTokenBound >= added + bytes(user.content),
      `bound ${meter.admitted[0]!.promptTokenBound} < ${added} bytes the profile adds`,
    );
  });

  test("the profile is applied exactly once (system prompt, examples, then the conversation)", async () => {
    const port = new RecordingPort();
    const gateway = new Gateway(port, undefined, new RecordingMeter(), undefined, profiles);
    await drain(gateway.generate(request, context));
    const sent = port.requests[0] as ChatRequest;
    assert.deepEqual(
      sent.messages.map((message) => message.role),
      ["system", "user", "assistant", "user"],
    );
    assert.equal(sent.messages[0]!.content, profile.system);
    // Counting for a client (count_tokens) sees the same profiled request.
    await gateway.countTokensRequest(request, context);
    assert.deepEqual(
      (port.counted[0] as ChatRequest).messages.map((message) => message.role),
      ["system", "user", "assistant", "user"],
    );
  });

  test("a request's own max_tokens and system message still win over the profile's", async () => {
    const port = new RecordingPort();
    const meter = new RecordingMeter();
    const gateway = new Gateway(port, undefined, meter, undefined, profiles);
    const own: ChatRequest = {
      ...request,
      messages: [{ role: "system", content: "mine" }, user],
      limits: { maxTokens: 3 },
    };
    await drain(gateway.generate(own, context));
    assert.equal(meter.admitted[0]!.maxTokens, 3);
    const sent = port.requests[0] as ChatRequest;
    assert.equal(sent.messages[0]!.content, "mine");
    assert.equal(sent.limits.maxTokens, 3);
  });
});
