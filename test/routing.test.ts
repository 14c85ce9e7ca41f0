import assert from "node:assert/strict";
import { test } from "node:test";
import { parseFileConfig } from "../src/config/fileConfig.js";
import { type ChatEvent, foldChatEvents, type GenerateRequest, type ModelPort } from "../src/core/chat.js";
import type { CallerKey, RequestContext } from "../src/core/context.js";
import { FreeholdError } from "../src/core/errors.js";
import { Router } from "../src/routing/router.js";
import { buildRoutingTable } from "../src/routing/table.js";
import { type Behavior, type FakeUpstream, startFakeUpstream } from "./helpers/fakeUpstream.js";

/**
 * The router against fake upstreams on loopback (real HTTP, OpenAI and Anthropic wire formats) and a recording
 * stand-in for the local engine, so each rule is checked without loading a model.
 */

class LocalRecorder implements ModelPort {
  readonly requests: GenerateRequest[] = [];
  async *generate(request: GenerateRequest): AsyncGenerator<ChatEvent> {
    this.requests.push(request);
    yield { type: "text-delta", text: `local answer from ${request.model}` };
    yield { type: "usage", usage: { promptTokens: 1, completionTokens: 1 } };
    yield { type: "finish", reason: "stop" };
  }
  async embed() {
    return { vectors: [[1, 0]], promptTokens: 1 };
  }
  async listModels() {
    return [{ name: "llama", created: 0, ownedBy: "local", contextLength: 512 }];
  }
  async countTokens() {
    return 3;
  }
}

let counter = 0;
function context(key?: Partial<CallerKey>): RequestContext {
  return {
    requestId: `req_test_${counter++}`,
    api: "openai",
    route: "/v1/chat/completions",
    ...(key
      ? { key: { id: "k1", name: "k1", admin: false, models: null, localOnly: false, storeContent: false, ...key } }
      : {}),
  };
}

function chat(model: string, content: string): GenerateRequest {
  return { kind: "chat", model, messages: [{ role: "user", content }], sampling: {}, limits: {} };
}

function toError(event: Extract<ChatEvent, { type: "error" }>): Error {
  return new FreeholdError(event.error.message, {
    code: event.error.code,
    status: event.error.status,
    type: "server_error",
  });
}

async function setup(
  yaml: (fakes: FakeUpstream[]) => string,
  behaviors: ((index: number) => Behavior)[] = [() => ({ kind: "reply" })],
  offline = false,
) {
  const fakes = await Promise.all(behaviors.map((behave) => startFakeUpstream((_, index) => behave(index))));
  const local = new LocalRecorder();
  const file = parseFileConfig(yaml(fakes), "test.yaml", {});
  const router = new Router(buildRoutingTable(file, local, offline));
  const ask = (model: string, content: string, ctx = context()) =>
    foldChatEvents(router.generate(chat(model, content), ctx), toError).then((answer) => ({ answer, ctx }));
  const dispose = async () => {
    router.dispose();
    await Promise.all(fakes.map((fake) => fake.close()));
  };
  return { fakes, local, router, ask, dispose };
}

const cloudRoute = (fakes: FakeUpstream[], extra = "") => `
providers:
  cloud: { kind: openai, base_url: "${fakes[0]!.openaiBase}", api_key: sk-configured-key-000000000000 }
routes:
  smart:
    privacy: local-only
    retries: 0
    backoff: 0.01
    ${extra}
    targets:
      - { provider: cloud, model: gpt-cloud, timeout: 0.5 }
      - { provider: local, model: llama }
`;

test("routes by model name: a route goes to its target, other names stay local", async (t) => {
  const { fakes, local, ask, dispose } = await setup(cloudRoute);
  t.after(dispose);
  const routed = await ask("smart", "Write a haiku about rain.");
  assert.equal(routed.answer.text, "Hello from the cloud.");
  assert.equal(fakes[0]!.received.length, 1);
  assert.equal(fakes[0]!.received[0]!.body?.model, "gpt-cloud");
  assert.equal(fakes[0]!.received[0]!.headers.authorization, "Bearer sk-configured-key-000000000000");
  const unrouted = await ask("llama", "hi");
  assert.equal(unrouted.answer.text, "local answer from llama");
  assert.equal(fakes[0]!.received.length, 1);
  assert.equal(local.requests.length, 1);
});

test("weighted balancing splits sequential requests by weight, and prefers the less loaded replica", async (t) => {
  const { fakes, ask, router, dispose } = await setup(
    (f) => `
providers:
  a: { kind: openai, base_url: "${f[0]!.openaiBase}" }
  b: { kind: openai, base_url: "${f[1]!.openaiBase}" }
routes:
  pool:
    privacy: allow
    targets:
      - balance:
          - { provider: a, model: m, weight: 3 }
          - { provider: b, model: m, weight: 1 }
`,
    [() => ({ kind: "reply" }), () => ({ kind: "reply" })],
  );
  t.after(dispose);
  for (let i = 0; i < 8; i++) await ask("pool", "hello");
  assert.equal(fakes[0]!.received.length, 6);
  assert.equal(fakes[1]!.received.length, 2);
  // Least outstanding: while a slow request holds `a`, the next one goes to `b` despite its smaller weight.
  fakes[0]!.behave = () => ({ kind: "reply", delayMs: 300 });
  const slow = foldChatEvents(router.generate(chat("pool", "slow"), context()), toError);
  await new Promise((resolve) => setTimeout(resolve, 50));
  const before = fakes[1]!.received.length;
  await ask("pool", "quick");
  assert.equal(fakes[1]!.received.length, before + 1);
  await slow;
});

test("falls back on 5xx, on timeout, and on a stream dropped before the first token", async (t) => {
  for (const [name, behavior] of [
    ["5xx", { kind: "error", status: 500 }],
    ["timeout", { kind: "hang" }],
    ["dropped stream", { kind: "drop" }],
  ] as const) {
    const { fakes, local, router, ask, dispose } = await setup(cloudRoute, [() => behavior]);
    t.after(dispose);
    const { answer, ctx } = await ask("smart", "no personal data here");
    assert.equal(answer.text, "local answer from llama", name);
    assert.equal(fakes[0]!.received.length, 1, name);
    assert.equal(local.requests.length, 1, name);
    const decision = router.decisions.get(ctx.requestId)!;
    assert.equal(decision.servedBy?.provider, "local", name);
    assert.equal(decision.attempts[0]!.outcome, name === "timeout" ? "timeout" : "error", name);
  }
});

test("retries a 429 after its Retry-After, then falls back when Retry-After is too long", async (t) => {
  const { fakes, local, ask, dispose } = await setup(
    (f) =>
      cloudRoute(f)
        .replace("retries: 0", "retries: 1")
        .replace("backoff: 0.01", "backoff: 0.01\n    max_retry_wait: 1"),
    [(index) => (index === 0 ? { kind: "error", status: 429, retryAfter: "1" } : { kind: "reply" })],
  );
  t.after(dispose);
  const started = Date.now();
  const first = await ask("smart", "hello");
  assert.equal(first.answer.text, "Hello from the cloud.");
  assert.ok(Date.now() - started >= 950, "waited for Retry-After");
  assert.equal(fakes[0]!.received.length, 2);
  fakes[0]!.behave = () => ({ kind: "error", status: 429, retryAfter: "30" });
  const second = await ask("smart", "hello again");
  assert.equal(second.answer.text, "local answer from llama");
  assert.equal(fakes[0]!.received.length, 3, "a 30 s Retry-After is not waited for");
  assert.equal(local.requests.length, 1);
});

test("the circuit breaker opens after repeated failures, then probes and closes", async (t) => {
  const { fakes, local, router, ask, dispose } = await setup(
    (f) => cloudRoute(f, "breaker: { failures: 2, cooldown: 0.3 }"),
    [() => ({ kind: "error", status: 503 })],
  );
  t.after(dispose);
  await ask("smart", "one");
  await ask("smart", "two");
  assert.equal(fakes[0]!.received.length, 2);
  const open = await ask("smart", "three");
  assert.equal(fakes[0]!.received.length, 2, "an open circuit sends nothing");
  assert.equal(open.answer.text, "local answer from llama");
  assert.equal(router.decisions.get(open.ctx.requestId)!.attempts[0]!.outcome, "circuit open");
  fakes[0]!.behave = () => ({ kind: "reply" });
  await new Promise((resolve) => setTimeout(resolve, 350));
  const probe = await ask("smart", "four");
  assert.equal(probe.answer.text, "Hello from the cloud.", "the probe after the cool-down goes through");
  const closed = await ask("smart", "five");
  assert.equal(closed.answer.text, "Hello from the cloud.");
  assert.equal(local.requests.length, 3);
});

test("an e-mail address on a local-only route goes local and never reaches the cloud", async (t) => {
  const { fakes, local, router, ask, dispose } = await setup(cloudRoute);
  t.after(dispose);
  const { answer, ctx } = await ask("smart", "Please reply to jane.doe@example.com about the invoice.");
  assert.equal(answer.text, "local answer from llama");
  assert.deepEqual(fakes[0]!.received, []);
  assert.equal(local.requests.length, 1);
  const decision = router.decisions.get(ctx.requestId)!;
  assert.deepEqual(decision.findings, { email: 1 });
  assert.equal(decision.excluded[0]!.provider, "cloud");
  assert.ok(!JSON.stringify(decision).includes("jane.doe"), "the decision keeps kinds and counts, not values");
});

test("local-only never falls back to a remote target, and fails clearly without a local one", async (t) => {
  const { fakes, ask, dispose } = await setup(
    (f) => `
providers:
  cloud: { kind: openai, base_url: "${f[0]!.openaiBase}" }
routes:
  remote-only:
    targets: [{ provider: cloud, model: gpt }]
`,
  );
  t.after(dispose);
  await assert.rejects(ask("remote-only", "my card is 4111 1111 1111 1111"), (error: FreeholdError) => {
    assert.equal(error.status, 403);
    assert.equal(error.code, "privacy_local_only");
    assert.match(error.message, /card: 1/);
    return true;
  });
  assert.deepEqual(fakes[0]!.received, [], "the default policy is local-only: nothing left");
});

test("redact sends placeholders and the client sees the originals restored, streamed deltas included", async (t) => {
  const { fakes, router, dispose } = await setup(
    (f) => `
providers:
  cloud: { kind: anthropic, base_url: "${f[0]!.url}", api_key: ant-key }
routes:
  smart:
    privacy: redact
    targets: [{ provider: cloud, model: claude }]
`,
    [() => ({ kind: "echo" })],
  );
  t.after(dispose);
  const secret = "Mail bob@example.org or call +1 415 555 0100, key sk-abcdefghijklmnopqrstuvwx1234.";
  const ctx = context();
  const deltas: string[] = [];
  for await (const event of router.generate(chat("smart", secret), ctx))
    if (event.type === "text-delta") deltas.push(event.text);
  const sent = JSON.stringify(fakes[0]!.received[0]!.body);
  assert.ok(!sent.includes("bob@example.org") && !sent.includes("555 0100") && !sent.includes("sk-abcdef"), sent);
  assert.match(sent, /\[EMAIL_1\].*\[PHONE_1\].*\[SECRET_1\]/);
  assert.equal(deltas.join(""), secret);
  assert.deepEqual(router.decisions.get(ctx.requestId)!.redacted, { email: 1, phone: 1, secret: 1 });
});

test("a local-only key with a remote-only route is refused; offline refuses egress too", async (t) => {
  const yaml = (f: FakeUpstream[]) => `
providers:
  cloud: { kind: openai, base_url: "${f[0]!.openaiBase}" }
routes:
  gpt-4o:
    privacy: allow
    targets: [{ provider: cloud, model: gpt-4o }]
`;
  const online = await setup(yaml);
  t.after(online.dispose);
  await assert.rejects(online.ask("gpt-4o", "hello", context({ localOnly: true })), /local-only/);
  assert.deepEqual(online.fakes[0]!.received, []);
  const offline = await setup(yaml, [() => ({ kind: "reply" })], true);
  t.after(offline.dispose);
  await assert.rejects(offline.ask("gpt-4o", "hello"), (error: FreeholdError) => error.code === "egress_forbidden");
  assert.deepEqual(offline.fakes[0]!.received, []);
});

test("OpenAI-shaped tools reach an Anthropic upstream and its tool call comes back", async (t) => {
  const { fakes, router, dispose } = await setup(
    (f) => `
providers:
  claude: { kind: anthropic, base_url: "${f[0]!.url}", api_key: ant-key }
routes:
  smart: { privacy: allow, targets: [{ provider: claude, model: claude-x }] }
`,
    [() => ({ kind: "reply", toolCall: { name: "get_weather", arguments: '{"city":"Oslo"}' } })],
  );
  t.after(dispose);
  const request: GenerateRequest = {
    kind: "chat",
    model: "smart",
    messages: [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Weather?" },
    ],
    tools: [{ name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } }],
    toolChoice: "required",
    sampling: { temperature: 0 },
    limits: { maxTokens: 50 },
  };
  const answer = await foldChatEvents(router.generate(request, context()), toError);
  assert.deepEqual(answer.toolCalls, [{ id: "toolu_fake", name: "get_weather", arguments: '{"city":"Oslo"}' }]);
  assert.equal(answer.finishReason, "tool-calls");
  const sent = fakes[0]!.received[0]!;
  assert.equal(sent.path, "/v1/messages");
  assert.equal(sent.headers["x-api-key"], "ant-key");
  assert.equal(sent.body?.system, "Be brief.");
  assert.deepEqual(sent.body?.tool_choice, { type: "any" });
  assert.equal((sent.body!.tools as { name: string }[])[0]!.name, "get_weather");
});

test("a client that takes the answer whole gets it from the upstream in one piece; a streaming one gets a stream", async (t) => {
  const { fakes, router, dispose } = await setup(cloudRoute, [
    () => ({ kind: "reply", text: "Whole answer.", toolCall: { name: "lookup", arguments: '{"q":"rain"}' } }),
  ]);
  t.after(dispose);
  const ask = (wholeAnswer: boolean) =>
    foldChatEvents(
      router.generate({ ...chat("smart", "Look up rain."), ...(wholeAnswer ? { wholeAnswer } : {}) }, context()),
      toError,
    );
  const whole = await ask(true);
  const streamed = await ask(false);
  assert.equal(fakes[0]!.received[0]!.body?.stream, false);
  assert.equal(fakes[0]!.received[1]!.body?.stream, true);
  // The same answer either way: text, the tool call, usage and finish reason.
  assert.equal(whole.text, streamed.text);
  assert.deepEqual(
    whole.toolCalls.map((call) => [call.name, call.arguments]),
    [["lookup", '{"q":"rain"}']],
  );
  assert.deepEqual(
    streamed.toolCalls.map((call) => [call.name, call.arguments]),
    [["lookup", '{"q":"rain"}']],
  );
  assert.deepEqual(whole.usage, streamed.usage);
  assert.equal(whole.finishReason, streamed.finishReason);
});

test("token counting passes the same policy: a local-only key or a finding on a local-only route never reaches count_tokens; redact sends placeholders", async (t) => {
  const { fakes, router, dispose } = await setup(
    (f) => `
providers:
  claude: { kind: anthropic, base_url: "${f[0]!.url}", api_key: ant-key }
routes:
  open: { privacy: allow, targets: [{ provider: claude, model: claude-x }] }
  private: { privacy: local-only, targets: [{ provider: claude, model: claude-x }] }
  masked: { privacy: redact, targets: [{ provider: claude, model: claude-x }] }
  strict: { privacy: block, targets: [{ provider: claude, model: claude-x }] }
`,
    [() => ({ kind: "reply" })],
  );
  t.after(dispose);
  fakes[0]!.behave = () => ({ kind: "reply" });
  const secret = "Mail bob@example.org about card 4111 1111 1111 1111.";
  const counted = (model: string, ctx = context()) => router.countTokens(chat(model, secret), ctx);
  // Nothing may leave: the estimate (about four characters a token) answers instead.
  assert.equal(await counted("open", context({ localOnly: true })), Math.ceil(secret.length / 4));
  // A local-only key keeps even harmless text here (the old code counted it remotely on an `allow` route).
  assert.equal(await router.countTokens(chat("open", "hello there"), context({ localOnly: true })), 3);
  assert.equal(await counted("private"), Math.ceil(secret.length / 4));
  assert.equal(await counted("strict"), Math.ceil(secret.length / 4));
  assert.equal(fakes[0]!.received.length, 0, "no count_tokens call left for a local-only key, local-only or block");
  await counted("masked");
  assert.equal(fakes[0]!.received.length, 1);
  const sent = fakes[0]!.received[0]!;
  assert.equal(sent.path, "/v1/messages/count_tokens");
  const body = JSON.stringify(sent.body);
  assert.ok(!body.includes("bob@example.org") && !body.includes("4111 1111"), body);
  assert.match(body, /\[EMAIL_1\].*\[CARD_1\]/);
});

test("a body too big to scan counts as sensitive: block refuses, local-only stays local, redact never sends it unredacted", async (t) => {
  const { fakes, local, router, ask, dispose } = await setup(
    (f) => `
providers:
  cloud: { kind: openai, base_url: "${f[0]!.openaiBase}" }
privacy:
  max_scan_chars: 1000
routes:
  strict: { privacy: block, targets: [{ provider: cloud, model: gpt }] }
  private: { privacy: local-only, targets: [{ provider: cloud, model: gpt }, { provider: local, model: llama }] }
  masked: { privacy: redact, targets: [{ provider: cloud, model: gpt }] }
  masked-with-local: { privacy: redact, targets: [{ provider: cloud, model: gpt }, { provider: local, model: llama }] }
  open: { privacy: allow, targets: [{ provider: cloud, model: gpt }] }
`,
  );
  t.after(dispose);
  const big = "just words ".repeat(200);
  await assert.rejects(ask("strict", big), (error: FreeholdError) => {
    assert.equal(error.code, "privacy_blocked");
    assert.match(error.message, /could not be checked.*more than the scan budget of 1000/);
    return true;
  });
  const kept = await ask("private", big);
  assert.equal(kept.answer.text, "local answer from llama");
  assert.deepEqual(router.decisions.get(kept.ctx.requestId)!.findings, { unscannable: 1 });
  await assert.rejects(ask("masked", big), (error: FreeholdError) => error.code === "privacy_unscannable");
  const fallback = await ask("masked-with-local", big);
  assert.equal(fallback.answer.text, "local answer from llama");
  assert.equal(fakes[0]!.received.length, 0, "nothing unscannable left on block, local-only or redact");
  // `allow` lets anything go, scanned or not; a small request still goes out on every policy.
  await ask("open", big);
  await ask("masked", "just words");
  assert.equal(fakes[0]!.received.length, 2);
  assert.equal(local.requests.length, 2);
});

test("freehold.yaml refuses an owner pattern that could not be scanned in bounded time, naming the line and why", () => {
  const yaml = `privacy:\n  patterns:\n    ok: "EMP-\\\\d+"\n    bad: "(\\\\w+\\\\.)*corp"\n`;
  assert.throws(
    () => parseFileConfig(yaml, "test.yaml", {}),
    (error: Error) => {
      assert.match(error.message, /privacy\.patterns\.bad/);
      assert.match(error.message, /repetition of a group that itself repeats/);
      assert.doesNotMatch(error.message, /patterns\.ok/);
      return true;
    },
  );
});
