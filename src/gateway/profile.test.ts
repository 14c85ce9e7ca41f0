import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatEvent, ChatRequest, GenerateRequest } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import type { ModelProfile } from "../core/profile.js";
import { profiled } from "./profile.js";

const context: RequestContext = { requestId: "r", api: "ollama", route: "/api/chat" };

function recorder() {
  const seen: GenerateRequest[] = [];
  async function* inner(request: GenerateRequest): AsyncGenerator<ChatEvent> {
    seen.push(request);
    yield { type: "finish", reason: "stop" };
  }
  return { seen, inner };
}

async function run(events: AsyncIterable<ChatEvent>) {
  for await (const _ of events) {
  }
}

test("the profile of the name asked for reaches the next stage: defaults, system prompt, examples", async () => {
  const profile: ModelProfile = {
    system: "be brief",
    sampling: { temperature: 0.1 },
    limits: { maxTokens: 9, stop: ["END"] },
    messages: [{ role: "user", content: "example" }],
  };
  const asked: string[] = [];
  const { seen, inner } = recorder();
  const lookup = async (model: string) => {
    asked.push(model);
    return profile;
  };
  const stage = profiled({ profile: lookup }, inner);
  const request: ChatRequest = {
    kind: "chat",
    model: "bot",
    messages: [{ role: "user", content: "hi" }],
    sampling: { temperature: 0.7 },
    limits: {},
  };
  await run(stage(request, context));
  assert.deepEqual(asked, ["bot"]);
  const got = seen[0] as ChatRequest;
  assert.deepEqual(
    got.messages.map((m) => m.content),
    ["be brief", "example", "hi"],
  );
  assert.equal(got.sampling.temperature, 0.7, "the request's own value wins");
  assert.deepEqual(got.limits, { maxTokens: 9, stop: ["END"] });
});

test("a name without a profile passes through as it came (the same object)", async () => {
  const { seen, inner } = recorder();
  const request: GenerateRequest = { kind: "completion", model: "plain", prompt: "x", sampling: {}, limits: {} };
  await run(profiled({ profile: async () => undefined }, inner)(request, context));
  assert.equal(seen[0], request);
});

test("a profile lookup that fails fails the request before the next stage runs", async () => {
  const { seen, inner } = recorder();
  const failing = { profile: async () => Promise.reject(new Error("store unreadable")) };
  const request: GenerateRequest = { kind: "completion", model: "bot", prompt: "x", sampling: {}, limits: {} };
  await assert.rejects(run(profiled(failing, inner)(request, context)), /store unreadable/);
  assert.equal(seen.length, 0);
});
