import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { ChatEvent, ChatRequest, GenerateRequest, ModelPort, RoutedEvent } from "../core/chat.js";
import type { CallerKey, RequestContext } from "../core/context.js";
import { PermissionError } from "../core/errors.js";
import type { Admission, MeterOutcome, MeterTarget, MeterWork, RequestMeter } from "../core/metering.js";
import type { ModelProfile } from "../core/profile.js";
import { Gateway } from "./gateway.js";
import { generationPipeline } from "./pipeline.js";
import type { ProfileSource, RoutingPort } from "./ports.js";

/**
 * The pipeline's order, proven with recording fakes for every port: each stage writes what it saw to one shared
 * log, so the test reads the order the stages really ran in and what each one was handed.
 */

type Step = string;

const profile: ModelProfile = { system: "profile system prompt", limits: { maxTokens: 11 } };

function fakes(log: Step[], options: { servedBy?: MeterTarget; fail?: boolean; block?: boolean } = {}) {
  const profiles: ProfileSource = {
    async profile(model) {
      log.push(`profile:${model}`);
      return model === "bot" ? profile : undefined;
    },
  };
  const settled: MeterOutcome[] = [];
  const admitted: MeterWork[] = [];
  const meter: RequestMeter = {
    async admit(work: MeterWork, _context, target): Promise<Admission> {
      admitted.push(work);
      log.push(`reserve:${work.maxTokens}:${target.provider}`);
      return {
        maxTokens: work.maxTokens,
        settle: async (outcome) => {
          settled.push(outcome);
          log.push(`settle:${outcome.status}:${outcome.servedBy?.provider ?? "admitted"}`);
        },
      };
    },
  };
  const routed: GenerateRequest[] = [];
  const routing: RoutingPort = {
    async plan(request) {
      routed.push(request);
      log.push(`policy:${(request as ChatRequest).messages.map((m) => m.role).join(",")}`);
      if (options.block) throw new PermissionError("blocked by the route's policy", "privacy_blocked");
      return { request, checked: true };
    },
    async *serve(checked): AsyncGenerator<RoutedEvent> {
      const request = checked.request;
      log.push(`route:${(checked as { checked?: boolean }).checked ? "checked" : "unchecked"}`);
      if (options.fail) throw new Error("every target failed");
      yield {
        type: "served-by",
        target: options.servedBy ?? { provider: "local", model: request.model, remote: false },
      };
      log.push("model");
      yield { type: "text-delta", text: "hello" };
      yield { type: "usage", usage: { promptTokens: 4, completionTokens: 1 } };
      yield { type: "finish", reason: "stop" };
    },
    embed: async () => ({ vectors: [], promptTokens: 0 }),
    listModels: async () => [],
    countTokens: async () => 1,
    candidates: (model) => [{ provider: "local", model, remote: false }],
  };
  const local: ModelPort = {
    generate: () => {
      throw new Error("the pipeline goes through routing");
    },
    embed: async () => ({ vectors: [], promptTokens: 0 }),
    listModels: async () => [],
    countTokens: async () => 1,
  };
  return { profiles, meter, routing, local, settled, admitted, routed };
}

/** Every stage up to the route, as a profiled request for "bot" passes them. */
const throughRoute = ["profile:bot", "reserve:11:local", "policy:system,user", "route:checked"];

const chat = (model: string): ChatRequest => ({
  kind: "chat",
  model,
  messages: [{ role: "user", content: "hi" }],
  sampling: {},
  limits: {},
});

const scoped = (models: string[]): RequestContext => {
  const key: CallerKey = { id: "k", name: "scoped", admin: false, models, localOnly: false, storeContent: false };
  return { requestId: "r", api: "openai", route: "/v1/chat/completions", key };
};

async function read(events: AsyncIterable<ChatEvent>): Promise<ChatEvent[]> {
  const all: ChatEvent[] = [];
  for await (const event of events) all.push(event);
  return all;
}

describe("the gateway's pipeline", () => {
  test("runs authorize → profile → reserve → route → settle, each stage seeing the previous one's output", async () => {
    const log: Step[] = [];
    const ports = fakes(log);
    const events = await read(generationPipeline(ports)(chat("bot"), scoped(["bot"])));
    assert.deepEqual(log, [
      "profile:bot",
      // The reservation already holds the profile's max_tokens; the router gets the profile's system prompt.
      "reserve:11:local",
      "policy:system,user",
      "route:checked",
      "model",
      "settle:200:local",
    ]);
    assert.deepEqual(
      events.map((event) => event.type),
      ["text-delta", "usage", "finish"],
      "served-by is consumed by the settle stage: the APIs never see it",
    );
  });

  test("authorization comes first: a model outside the key's scope is refused before any other stage runs", async () => {
    const log: Step[] = [];
    const ports = fakes(log);
    await assert.rejects(read(generationPipeline(ports)(chat("bot"), scoped(["other"]))), {
      code: "model_not_allowed",
    });
    assert.deepEqual(log, []);
  });

  test("the target the router names in the stream is the one settled, not the one admitted", async () => {
    const log: Step[] = [];
    const cloud = { provider: "cloud", model: "gpt", remote: true };
    const ports = fakes(log, { servedBy: cloud });
    await read(generationPipeline(ports)(chat("smart"), scoped(["smart"])));
    assert.deepEqual(ports.settled[0]!.servedBy, cloud);
    assert.equal(log.at(-1), "settle:200:cloud");
  });

  test("a routing failure is settled with its status, after the reservation, and thrown", async () => {
    const log: Step[] = [];
    const ports = fakes(log, { fail: true });
    await assert.rejects(read(generationPipeline(ports)(chat("bot"), scoped(["bot"]))), /every target failed/);
    assert.deepEqual(log, [...throughRoute, "settle:500:admitted"]);
  });

  test("a request the policy blocks is refused before the route stage, its reservation settled with 403", async () => {
    const log: Step[] = [];
    const ports = fakes(log, { block: true });
    await assert.rejects(read(generationPipeline(ports)(chat("bot"), scoped(["bot"]))), { code: "privacy_blocked" });
    assert.deepEqual(log, ["profile:bot", "reserve:11:local", "policy:system,user", "settle:403:admitted"]);
  });

  test("Gateway.generate runs the same pipeline, with the ports it was given", async () => {
    const log: Step[] = [];
    const ports = fakes(log);
    const gateway = new Gateway(ports.local, ports.routing, ports.meter, undefined, ports.profiles);
    await read(gateway.generate(chat("bot"), scoped(["bot"])));
    assert.deepEqual(log, [...throughRoute, "model", "settle:200:local"]);
  });

  test("without a routing table or a meter, the null ports stand in and the local port still answers", async () => {
    const answered: GenerateRequest[] = [];
    const local: ModelPort = {
      async *generate(request) {
        answered.push(request);
        yield { type: "text-delta", text: "ok" };
        yield { type: "finish", reason: "stop" };
      },
      embed: async () => ({ vectors: [], promptTokens: 0 }),
      listModels: async () => [],
      countTokens: async () => 1,
    };
    const events = await read(new Gateway(local).generate(chat("bot"), scoped(["bot"])));
    assert.deepEqual(
      events.map((event) => event.type),
      ["text-delta", "finish"],
    );
    assert.equal(answered.length, 1);
    await assert.rejects(read(new Gateway(local).generate(chat("bot"), scoped(["x"]))), { code: "model_not_allowed" });
  });
});
