import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatEvent, GenerateRequest, RoutedEvent } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import type { Admission, MeterOutcome, MeterWork, RequestMeter } from "../core/metering.js";
import { metered } from "./metering.js";

const context: RequestContext = { requestId: "r", api: "openai", route: "/v1/chat/completions" };
const request: GenerateRequest = { kind: "completion", model: "smart", prompt: "x", sampling: {}, limits: {} };
const cloud = { provider: "cloud", model: "gpt", remote: true };

function recordingMeter(ceiling: number) {
  const admitted: MeterWork[] = [];
  const settled: MeterOutcome[] = [];
  const meter: RequestMeter = {
    async admit(work): Promise<Admission> {
      admitted.push(work);
      return { maxTokens: work.maxTokens ?? ceiling, settle: async (outcome) => void settled.push(outcome) };
    },
  };
  return { meter, admitted, settled };
}

const options = { candidates: () => [cloud], promptBound: async () => 40 };

test("reserves before the inner stage runs, asks it for the reserved max_tokens, settles with the served-by target", async () => {
  const { meter, admitted, settled } = recordingMeter(64);
  const asked: GenerateRequest[] = [];
  async function* inner(limited: GenerateRequest): AsyncGenerator<RoutedEvent> {
    asked.push(limited);
    assert.equal(admitted.length, 1, "reserved first");
    yield { type: "served-by", target: cloud };
    yield { type: "text-delta", text: "hi" };
    yield { type: "usage", usage: { promptTokens: 3, completionTokens: 1 } };
    yield { type: "finish", reason: "stop" };
  }
  const events: ChatEvent[] = [];
  for await (const event of metered(meter, options, inner)(request, context)) events.push(event);
  assert.deepEqual(
    events.map((event) => event.type),
    ["text-delta", "usage", "finish"],
  );
  assert.deepEqual(admitted[0]!.candidates, [cloud]);
  assert.equal(admitted[0]!.promptTokenBound, 40);
  assert.equal(asked[0]!.limits.maxTokens, 64, "the key's ceiling bounds a request that set none");
  assert.deepEqual(settled[0]!.servedBy, cloud);
  assert.equal(settled[0]!.status, 200);
  assert.equal(settled[0]!.promptTokens, 3);
});

test("a client that leaves before the first token of a remote target is charged the prompt bound there", async () => {
  const { meter, settled } = recordingMeter(64);
  const abort = new AbortController();
  async function* inner(): AsyncGenerator<RoutedEvent> {
    // The router names where it sent the prompt, then the start fails because the client went away.
    abort.abort(new Error("client closed"));
    yield { type: "served-by", target: cloud };
    throw new Error("aborted");
  }
  await assert.rejects(async () => {
    for await (const _ of metered(meter, options, inner)(request, context, abort.signal)) {
    }
  }, /aborted/);
  assert.equal(settled[0]!.status, 499);
  assert.deepEqual(settled[0]!.servedBy, cloud);
  assert.equal(settled[0]!.promptTokens, 40);
});

test("without a served-by, the row stays on the admitted target (nothing says otherwise)", async () => {
  const { meter, settled } = recordingMeter(64);
  async function* inner(): AsyncGenerator<RoutedEvent> {
    yield { type: "finish", reason: "stop" };
  }
  for await (const _ of metered(meter, options, inner)(request, context)) {
  }
  assert.equal(settled[0]!.servedBy, undefined);
});
