import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatEvent, GenerateRequest } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import { authorized, authorizeModel, modelAllowed } from "./authorize.js";

const keyed = (models: string[] | null): RequestContext => ({
  requestId: "r",
  api: "openai",
  route: "/v1/chat/completions",
  key: { id: "k", name: "k", admin: false, models, localOnly: false, storeContent: false },
});

test("a key's model scope: names compare case-insensitively with :latest implied; anything else is refused", () => {
  for (const [scope, model] of [
    [["Bot"], "bot"],
    [["bot"], "bot:latest"],
    [["bot:latest"], "BOT"],
    [["bot:q4"], "bot:Q4"],
  ] as const)
    assert.doesNotThrow(() => authorizeModel(keyed([...scope]), model), `${scope} / ${model}`);
  for (const [scope, model] of [
    [["bot"], "bot:q4"],
    [["bot:q4"], "bot"],
    [["bot"], "bot2"],
    [[], "bot"],
  ] as const)
    assert.throws(() => authorizeModel(keyed([...scope]), model), { code: "model_not_allowed", status: 403 });
  assert.equal(modelAllowed(keyed(null), "anything"), true, "no scope: any model");
  assert.equal(modelAllowed(undefined, "anything"), true, "no context (the library): any model");
  assert.equal(modelAllowed(keyed(["a"]), "b"), false);
});

test("the authorize stage refuses before the inner stage runs, and passes the request on untouched", async () => {
  const seen: GenerateRequest[] = [];
  async function* inner(request: GenerateRequest): AsyncGenerator<ChatEvent> {
    seen.push(request);
    yield { type: "finish", reason: "stop" };
  }
  const stage = authorized(inner);
  const request: GenerateRequest = { kind: "completion", model: "bot", prompt: "x", sampling: {}, limits: {} };
  await assert.rejects(async () => {
    for await (const _ of stage(request, keyed(["other"]))) {
    }
  }, /may not use the model 'bot'/);
  assert.equal(seen.length, 0);
  for await (const _ of stage(request, keyed(["bot"]))) {
  }
  assert.equal(seen[0], request);
});
