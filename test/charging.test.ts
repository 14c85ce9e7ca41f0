import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { runCli } from "./helpers/cli.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fakeUpstream.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

/**
 * What was consumed is charged (issue 13, items 5-8 and count_tokens), against a real `freehold serve`: a client
 * that hangs up mid-stream on any API is charged what its generation used (local and remote), its hang-ups never
 * open a route's breaker, bursts never pass a daily limit, a stalled or oversized upstream answer is cut off and
 * settled, and token counting is rate-limited and in the ledger.
 */

const story = "Once upon a time";

/** One streamed request per API, asking for a long answer so the client can leave in the middle. */
const apis: { name: string; path: string; body: (model: string) => Record<string, unknown> }[] = [
  {
    name: "OpenAI chat",
    path: "/v1/chat/completions",
    body: (model) => ({
      model,
      messages: [{ role: "user", content: story }],
      max_tokens: 400,
      stream: true,
      ignore_eos: true,
    }),
  },
  {
    name: "OpenAI completions",
    path: "/v1/completions",
    body: (model) => ({ model, prompt: story, max_tokens: 400, stream: true, ignore_eos: true }),
  },
  {
    name: "OpenAI responses",
    path: "/v1/responses",
    body: (model) => ({ model, input: story, max_output_tokens: 400, stream: true, temperature: 1 }),
  },
  {
    name: "Anthropic messages",
    path: "/v1/messages",
    body: (model) => ({
      model,
      max_tokens: 400,
      stream: true,
      temperature: 1,
      messages: [{ role: "user", content: story }],
    }),
  },
  {
    name: "Ollama chat",
    path: "/api/chat",
    body: (model) => ({ model, messages: [{ role: "user", content: story }], options: { num_predict: 400 } }),
  },
  {
    name: "Ollama generate",
    path: "/api/generate",
    body: (model) => ({ model, prompt: story, options: { num_predict: 400 } }),
  },
];

interface LedgerRow {
  status: number;
  error_code: string | null;
  kind: string;
  provider: string;
  prompt_tokens: number;
  completion_tokens: number;
  cost_usd: number;
}

describe("what was consumed is charged, end to end", { skip: storiesModelMissing }, () => {
  const directory = temporaryDirectory("freehold-charging-");
  let cloud: FakeUpstream;
  let server: ServerProcess;
  const keys: Record<string, string> = {};
  let db: Database.Database;

  before(async () => {
    cloud = await startFakeUpstream((request) => {
      const model = String(request.body?.model ?? "");
      if (model === "stall-model") return { kind: "stall", chunks: 2 };
      if (model === "gpt-4.1-nano") return { kind: "hang" };
      if (model === "huge-model")
        return { kind: "huge", bytes: request.body?.stream ? 3 * 1024 * 1024 : 40 * 1024 * 1024 };
      // A provider that adds a hidden tool-use prompt, as Anthropic documents: more tokens than the request's bytes.
      if (request.body?.tools) return { kind: "reply", text: "Calling.", inputTokens: 400, delayMs: 200 };
      return { kind: "reply", text: "Hello from the cloud. ".repeat(20), chunkDelayMs: 25 };
    });
    const config = join(directory.path, "freehold.yaml");
    writeFileSync(
      config,
      [
        "providers:",
        `  cloud: { kind: openai, base_url: "${cloud.openaiBase}", api_key: sk-charging-test-000000000 }`,
        `  staller: { kind: openai, base_url: "${cloud.openaiBase}", api_key: sk-charging-test-000000000, idle_timeout: 1 }`,
        "routes:",
        "  paid: { privacy: allow, targets: [{ provider: cloud, model: gpt-4o }] }",
        // Its own route (and breaker), so the burst test stands apart from the hang-up tests.
        "  toolbox: { privacy: allow, targets: [{ provider: cloud, model: gpt-4o }] }",
        "  fragile: { privacy: allow, retries: 0, breaker: { failures: 2, cooldown: 600 }, targets: [{ provider: cloud, model: gpt-4o-mini }] }",
        "  silent: { privacy: allow, retries: 0, targets: [{ provider: cloud, model: gpt-4.1-nano }] }",
        "  stalled: { privacy: allow, retries: 0, targets: [{ provider: staller, model: stall-model }] }",
        "  oversized: { privacy: allow, retries: 0, targets: [{ provider: cloud, model: huge-model }] }",
        "",
      ].join("\n"),
    );
    server = await startServerProcess({ models: { stories: storiesModelPath }, args: ["--config", config] });
    const create = async (name: string, args: string[]) => {
      const result = await runCli(["keys", "create", "--name", name, ...args], { env: { FREEHOLD_HOME: server.home } });
      assert.equal(result.code, 0, result.stderr);
      keys[name] = result.stdout.trim();
    };
    await create("leaver", ["--daily-tokens", "1000000", "--budget-usd", "50"]);
    await create("hangups", []);
    await create("burst-local", ["--daily-tokens", "1000"]);
    await create("burst-remote", ["--daily-tokens", "5000"]);
    await create("counter", ["--rpm", "2"]);
    await create("watched", ["--daily-tokens", "1000000"]);
    db = new Database(join(server.home, "freehold.db"), { readonly: true });
  });
  after(async () => {
    db?.close();
    await server?.dispose();
    await cloud?.close();
    directory.dispose();
  });

  const headers = (key: string) => ({ authorization: `Bearer ${key}`, "x-api-key": key });

  /** The request's ledger row once it is settled (settling waits for the stopped generation's last events). */
  async function settledRow(requestId: string): Promise<LedgerRow> {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const row = db
        .prepare(
          "SELECT status, error_code, kind, provider, prompt_tokens, completion_tokens, cost_usd FROM ledger WHERE request_id = ?",
        )
        .get(requestId) as LedgerRow | undefined;
      if (row) return row;
      assert.ok(Date.now() < deadline, `no ledger row for ${requestId}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  function totals(keyName: string): { tokens: number; usd: number } {
    const row = db
      .prepare(
        "SELECT COALESCE(SUM(u.tokens), 0) AS tokens, COALESCE(SUM(u.cost_usd), 0) AS usd FROM usage_totals u JOIN keys k ON k.id = u.key_id WHERE k.name = ? AND u.period LIKE 'day:%'",
      )
      .get(keyName) as { tokens: number; usd: number };
    return row;
  }

  /** Streams a request, reads until some answer text arrived, then hangs up. */
  async function streamThenHangUp(key: string, path: string, body: unknown): Promise<string> {
    const controller = new AbortController();
    const response = await postJson(`${server.url}${path}`, body, { headers: headers(key), signal: controller.signal });
    assert.equal(response.status, 200, `${path}: ${response.status}`);
    const requestId = response.headers.get("x-request-id")!;
    const reader = response.body!.getReader();
    let text = "";
    const decoder = new TextDecoder();
    // A few chunks with content: past the first token, well before the end of a 400-token answer.
    while (!/(Once|Hello|[a-z]{3,}[^"]*"[^"]*[a-z]{3,}).*\n[\s\S]*\n.*[a-z]{2,}/.test(text) && text.length < 4000) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    controller.abort();
    await reader.cancel().catch(() => {});
    return requestId;
  }

  for (const api of apis) {
    for (const target of ["stories", "paid"]) {
      const remote = target === "paid";
      test(`${api.name}, ${remote ? "remote" : "local"}: a client that hangs up mid-stream is charged what was generated, status 499`, async () => {
        const before = totals("leaver");
        const requestId = await streamThenHangUp(keys.leaver!, api.path, api.body(target));
        const row = await settledRow(requestId);
        assert.equal(row.status, 499, JSON.stringify(row));
        assert.equal(row.error_code, "cancelled");
        assert.equal(row.provider, remote ? "cloud" : "local");
        assert.ok(row.prompt_tokens > 0, `prompt tokens charged: ${JSON.stringify(row)}`);
        assert.ok(row.completion_tokens > 0, `completion tokens charged: ${JSON.stringify(row)}`);
        assert.ok(row.completion_tokens <= 400, "never more than max_tokens");
        if (remote) assert.ok(row.cost_usd > 0, "a cancelled paid stream costs money");
        const after = totals("leaver");
        assert.equal(after.tokens - before.tokens, row.prompt_tokens + row.completion_tokens, "the key's counters");
        assert.ok(Math.abs(after.usd - before.usd - row.cost_usd) < 1e-12, "the key's budget");
      });
    }
  }

  test("a client that hangs up before a paid provider's first token is charged the prompt sent there", async () => {
    const controller = new AbortController();
    const sent = cloud.received.length;
    const pending = postJson(
      `${server.url}/v1/chat/completions`,
      { model: "silent", messages: [{ role: "user", content: story.repeat(20) }], stream: true, max_tokens: 10 },
      { headers: headers(keys.leaver!), signal: controller.signal },
    ).catch(() => undefined);
    while (cloud.received.length === sent) await new Promise((resolve) => setTimeout(resolve, 20));
    controller.abort();
    await pending;
    // No header came back (the answer waits for its first token), so the row is found by the model it went to.
    let requestId: string | undefined;
    for (let i = 0; i < 400 && !requestId; i++) {
      requestId = db.prepare("SELECT request_id FROM ledger WHERE model = 'gpt-4.1-nano'").pluck().get() as
        | string
        | undefined;
      if (!requestId) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.ok(requestId, "the request sent to the silent provider is in the ledger");
    const row = await settledRow(requestId);
    assert.equal(row.status, 499);
    assert.equal(row.provider, "cloud");
    assert.ok(row.prompt_tokens >= Buffer.byteLength(story.repeat(20)), JSON.stringify(row));
    assert.equal(row.completion_tokens, 0);
    assert.ok(row.cost_usd > 0, "the prompt's price counts against the budget");
  });

  test("client hang-ups never open a route's breaker: after 3 against a threshold of 2, the next request goes out", async () => {
    for (let i = 0; i < 3; i++) {
      const requestId = await streamThenHangUp(keys.hangups!, "/v1/chat/completions", {
        model: "fragile",
        messages: [{ role: "user", content: "Hello" }],
        stream: true,
      });
      assert.equal((await settledRow(requestId)).status, 499);
    }
    const sent = cloud.received.length;
    const response = await postJson(
      `${server.url}/v1/chat/completions`,
      { model: "fragile", messages: [{ role: "user", content: "Hello" }] },
      { headers: headers(keys.hangups!) },
    );
    assert.equal(response.status, 200, await response.clone().text());
    assert.equal(cloud.received.length, sent + 1, "the request reached the remote target");
  });

  async function burst(key: string, body: Record<string, unknown>): Promise<number[]> {
    const responses = await Promise.all(
      Array.from({ length: 20 }, () =>
        postJson(`${server.url}/v1/chat/completions`, body, { headers: headers(key) }).then(async (response) => {
          await response.arrayBuffer();
          return response.status;
        }),
      ),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    return responses;
  }

  function ledgerSum(keyName: string): number {
    const row = db
      .prepare(
        "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS tokens FROM ledger WHERE key_name = ? AND status = 200",
      )
      .get(keyName) as { tokens: number };
    return row.tokens;
  }

  test("20 concurrent local requests never pass a 1,000-token daily limit: the prompt is tokenized for the bound", async () => {
    const statuses = await burst(keys["burst-local"]!, {
      model: "stories",
      messages: [
        { role: "system", content: "You tell short stories to children." },
        { role: "user", content: story },
      ],
      max_tokens: 40,
      ignore_eos: true,
    });
    assert.ok(statuses.includes(200), `some ran: ${statuses}`);
    assert.ok(
      statuses.every((status) => status === 200 || status === 429),
      `${statuses}`,
    );
    const used = ledgerSum("burst-local");
    assert.ok(used <= 1000, `the ledger's sum ${used} is within the limit of 1,000`);
    assert.ok(totals("burst-local").tokens <= 1000);
  });

  test("20 concurrent remote requests with tools never pass a daily limit: the bound covers the provider's hidden prompt", async () => {
    const statuses = await burst(keys["burst-remote"]!, {
      model: "toolbox",
      messages: [{ role: "user", content: "What is the weather in Oslo?" }],
      tools: [
        {
          type: "function",
          function: { name: "weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
        },
      ],
      max_tokens: 50,
    });
    assert.ok(statuses.includes(200), `some ran: ${statuses}`);
    const used = ledgerSum("burst-remote");
    assert.ok(used <= 5000, `the ledger's sum ${used} is within the limit of 5,000`);
  });

  test("count_tokens counts against the key's request rate and is in the ledger at 0 tokens and $0", async () => {
    const count = () =>
      postJson(
        `${server.url}/v1/messages/count_tokens`,
        { model: "stories", messages: [{ role: "user", content: story }] },
        { headers: headers(keys.counter!) },
      );
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await count()).status);
    assert.deepEqual(statuses, [200, 200, 429]);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const rows = db
      .prepare(
        "SELECT status, kind, prompt_tokens + completion_tokens AS tokens, cost_usd FROM ledger WHERE key_name = 'counter' ORDER BY id",
      )
      .all();
    assert.deepEqual(rows, [
      { status: 200, kind: "count-tokens", tokens: 0, cost_usd: 0 },
      { status: 200, kind: "count-tokens", tokens: 0, cost_usd: 0 },
      { status: 429, kind: "count-tokens", tokens: 0, cost_usd: 0 },
    ]);
  });

  test("a remote stream that stalls after two chunks ends with a retryable idle-timeout error and is settled", async () => {
    const started = Date.now();
    const response = await postJson(
      `${server.url}/v1/chat/completions`,
      { model: "stalled", messages: [{ role: "user", content: "Hello" }], stream: true, max_tokens: 100 },
      { headers: headers(keys.watched!) },
    );
    assert.equal(response.status, 200);
    const text = await response.text();
    assert.ok(Date.now() - started < 15_000, "ended by the 1 s idle timeout, not by the client");
    assert.match(text, /tick/);
    assert.match(text, /upstream_idle_timeout/);
    const row = await settledRow(response.headers.get("x-request-id")!);
    assert.equal(row.status, 504);
    assert.equal(row.error_code, "upstream_idle_timeout");
    assert.ok(row.completion_tokens >= "tick tick ".length, "charged for the chunks received");
    const open = db
      .prepare("SELECT COUNT(*) AS n FROM reservations r JOIN keys k ON k.id = r.key_id WHERE k.name = 'watched'")
      .get() as { n: number };
    assert.equal(open.n, 0, "the reservation was settled");
  });

  test("an upstream line or body past the caps is cut off with a clear error, streamed or not", async () => {
    const streamed = await postJson(
      `${server.url}/v1/chat/completions`,
      { model: "oversized", messages: [{ role: "user", content: "Hello" }], stream: true },
      { headers: headers(keys.watched!) },
    );
    const streamedText = await streamed.text();
    assert.match(streamedText, /upstream_too_large/);
    assert.match(streamedText, /one line of the stream is larger than freehold accepts/);
    const whole = await postJson(
      `${server.url}/v1/chat/completions`,
      { model: "oversized", messages: [{ role: "user", content: "Hello" }] },
      { headers: headers(keys.watched!) },
    );
    assert.equal(whole.status, 502);
    const body = (await whole.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, "upstream_too_large");
    assert.match(body.error.message, /the answer's body is larger than freehold accepts/);
  });
});
