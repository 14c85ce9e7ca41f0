import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { parseFileConfig } from "../src/config/fileConfig.js";
import type { ChatEvent, ChatRequest, GenerateRequest, ModelPort } from "../src/core/chat.js";
import type { RequestContext } from "../src/core/context.js";
import type { ModelProfile } from "../src/core/profile.js";
import { Gateway } from "../src/gateway/gateway.js";
import { Router } from "../src/routing/router.js";
import { buildRoutingTable } from "../src/routing/table.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fakeUpstream.js";

/**
 * The privacy policy classifies the body that really leaves: after the profile of the name asked for has added its
 * system prompt and example messages (issue 19: the profile used to be applied by the engine, after the gateway, so
 * nothing upstream of it saw what the profile adds). A canary in the profile, not in the client's request, must be
 * caught by a blocking route and redacted on a redacting one, for every place a profile puts text.
 */

const canaries = { email: "jane.canary@example.com", card: "4111111111111111" };

const profiles: Record<string, ModelProfile> = {
  "in-system": { system: `Escalate to ${canaries.email} or charge card ${canaries.card}.` },
  "in-example": {
    messages: [
      { role: "user", content: `My card is ${canaries.card}, mail me at ${canaries.email}` },
      { role: "assistant", content: "Noted." },
    ],
  },
};

/** The local engine stand-in: answers, and records what reached it. */
class LocalRecorder implements ModelPort {
  readonly requests: GenerateRequest[] = [];
  async *generate(request: GenerateRequest): AsyncGenerator<ChatEvent> {
    this.requests.push(request);
    yield { type: "text-delta", text: "local" };
    yield { type: "finish", reason: "stop" };
  }
  embed(): Promise<never> {
    throw new Error("not used");
  }
  async listModels() {
    return [];
  }
  async countTokens() {
    return 1;
  }
}

async function read(events: AsyncIterable<ChatEvent>): Promise<string> {
  let text = "";
  for await (const event of events) if (event.type === "text-delta") text += event.text;
  return text;
}

const context = (): RequestContext => ({
  requestId: `r${Math.random()}`,
  api: "openai",
  route: "/v1/chat/completions",
});
const chat = (model: string): ChatRequest => ({
  kind: "chat",
  model,
  messages: [{ role: "user", content: "hello, nothing private here" }],
  sampling: {},
  limits: { maxTokens: 5 },
});

describe("the policy sees what a profile adds", () => {
  let upstream: FakeUpstream;
  let gateway: Gateway;
  let router: Router;
  const local = new LocalRecorder();

  before(async () => {
    upstream = await startFakeUpstream();
    const where = Object.keys(profiles);
    const yaml = [
      "providers:",
      `  cloud: { kind: openai, base_url: "${upstream.openaiBase}" }`,
      "routes:",
      ...where.flatMap((place) =>
        ["block", "redact", "local-only"].map(
          (policy) =>
            `  ${policy}-${place}: { privacy: ${policy}, retries: 0, targets: [{ provider: cloud, model: m }] }`,
        ),
      ),
      ...where.map(
        (place) =>
          `  fallback-${place}: { privacy: local-only, retries: 0, targets: [{ provider: cloud, model: m }, { provider: local, model: tiny }] }`,
      ),
    ].join("\n");
    router = new Router(buildRoutingTable(parseFileConfig(yaml, "profile-policy.yaml", {}), local, false));
    // Each route name is also a profile in the store: the profile of the name asked for is applied first.
    const source = {
      profile: async (model: string) => Object.entries(profiles).find(([place]) => model.endsWith(`-${place}`))?.[1],
    };
    gateway = new Gateway(local, router, undefined, undefined, source);
  });

  after(async () => {
    router.dispose();
    await upstream.close();
  });

  const sentSince = (before: number) =>
    upstream.received
      .slice(before)
      .filter((received) => received.method === "POST")
      .map((received) => JSON.stringify(received.body));

  for (const place of Object.keys(profiles)) {
    test(`a canary ${place} of the profile: a blocking route refuses, nothing is sent`, async () => {
      const before = upstream.received.length;
      await assert.rejects(read(gateway.generate(chat(`block-${place}`), context())), { code: "privacy_blocked" });
      assert.deepEqual(sentSince(before), []);
    });

    test(`a canary ${place} of the profile: a local-only route sends nothing and says so`, async () => {
      const before = upstream.received.length;
      await assert.rejects(read(gateway.generate(chat(`local-only-${place}`), context())), {
        code: "privacy_local_only",
      });
      assert.deepEqual(sentSince(before), []);
      // With a local target to fall back to, the local engine answers, with the profile's text (it never left).
      const answered = local.requests.length;
      assert.equal(await read(gateway.generate(chat(`fallback-${place}`), context())), "local");
      assert.deepEqual(sentSince(before), []);
      const seen = JSON.stringify(local.requests.slice(answered));
      assert.ok(seen.includes(canaries.card), "the local target got the profile's content");
    });

    test(`a canary ${place} of the profile: a redacting route sends the profile's text, canaries replaced`, async () => {
      const before = upstream.received.length;
      await read(gateway.generate(chat(`redact-${place}`), context()));
      const sent = sentSince(before);
      assert.equal(sent.length, 1, "the request was sent once");
      for (const canary of Object.values(canaries)) assert.ok(!sent[0]!.includes(canary), `${canary} left verbatim`);
      assert.ok(sent[0]!.includes(place === "in-system" ? "Escalate to" : "My card is"), "the profile's text was sent");
    });
  }

  test("a route's local target gets its own model's profile, once, after the one asked for", async () => {
    const yaml =
      "routes:\n  support: { privacy: block, targets: [{ provider: local, model: tiny }] }\n  tiny: { privacy: block, targets: [{ provider: local, model: tiny }] }";
    const own: Record<string, ModelProfile> = {
      tiny: { system: "tiny's own", messages: [{ role: "user", content: "ex" }] },
    };
    const source = { profile: async (model: string) => own[model] };
    const routed = new Router(buildRoutingTable(parseFileConfig(yaml, "profile-policy.yaml", {}), local, false), {
      profiles: source,
    });
    try {
      const viaRoute = new Gateway(local, routed, undefined, undefined, source);
      for (const name of ["support", "tiny"]) {
        const seen = local.requests.length;
        await read(viaRoute.generate(chat(name), context()));
        const got = local.requests[seen] as ChatRequest;
        assert.deepEqual(
          got.messages.map((message) => message.content),
          ["tiny's own", "ex", "hello, nothing private here"],
          name,
        );
      }
    } finally {
      routed.dispose();
    }
  });
});
