import assert from "node:assert/strict";
import { test } from "node:test";
import type { ChatEvent, GenerateRequest, RoutedEvent } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import type { CheckedRequest } from "../core/egress.js";
import { PermissionError } from "../core/errors.js";
import { classified } from "./policy.js";
import type { RoutingPort } from "./ports.js";
import { routed } from "./route.js";

const context: RequestContext = { requestId: "r", api: "openai", route: "/v1/chat/completions" };
const request: GenerateRequest = { kind: "completion", model: "smart", prompt: "x", sampling: {}, limits: {} };

function routing(log: string[], verdict: "send" | "block"): RoutingPort {
  return {
    async plan(planned, planContext) {
      log.push(`plan:${planned.model}:${planContext.requestId}`);
      if (verdict === "block") throw new PermissionError("the route's policy blocks it", "privacy_blocked");
      return { request: planned, token: "checked" } as CheckedRequest;
    },
    async *serve(checked, signal): AsyncGenerator<RoutedEvent> {
      log.push(`serve:${(checked as { token?: string }).token}:${signal ? "signal" : "none"}`);
      yield { type: "served-by", target: { provider: "cloud", model: "m", remote: true } };
      yield { type: "finish", reason: "stop" };
    },
    embed: async () => ({ vectors: [], promptTokens: 0 }),
    listModels: async () => [],
    countTokens: async () => 0,
    candidates: () => [],
  };
}

async function read(events: AsyncIterable<RoutedEvent | ChatEvent>) {
  const types: string[] = [];
  for await (const event of events) types.push(event.type);
  return types;
}

test("the policy stage plans (classifies) first; the route stage serves exactly what the plan returned", async () => {
  const log: string[] = [];
  const port = routing(log, "send");
  const signal = new AbortController().signal;
  const types = await read(classified(port, routed(port))(request, context, signal));
  assert.deepEqual(log, ["plan:smart:r", "serve:checked:signal"]);
  assert.deepEqual(types, ["served-by", "finish"], "the route stage passes served-by on to the settle stage");
});

test("a request the policy refuses never reaches the route stage", async () => {
  const log: string[] = [];
  const port = routing(log, "block");
  await assert.rejects(read(classified(port, routed(port))(request, context)), { code: "privacy_blocked" });
  assert.deepEqual(log, ["plan:smart:r"]);
});
