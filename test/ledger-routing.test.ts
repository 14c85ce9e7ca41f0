import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { runCli } from "./helpers/cli.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fakeUpstream.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

/** The control plane and the router together: where an answer came from decides its ledger row and its cost. */
describe("routed requests in the ledger: provider, real cost, budgets over fallbacks", {
  skip: storiesModelMissing,
}, () => {
  const directory = temporaryDirectory("freehold-ledger-routing-");
  let cloud: FakeUpstream;
  let server: ServerProcess;
  let admin: string;
  let budgeted: string;
  const config = join(directory.path, "freehold.yaml");
  before(async () => {
    cloud = await startFakeUpstream();
    writeFileSync(
      config,
      [
        "providers:",
        `  cloud: { kind: openai, base_url: "${cloud.openaiBase}", api_key: sk-ledger-test-0000000000 }`,
        "routes:",
        "  paid: { privacy: allow, targets: [{ provider: cloud, model: gpt-4o }] }",
        "  pricey-fallback: { privacy: allow, targets: [{ provider: local, model: stories }, { provider: cloud, model: claude-opus-4 }] }",
        "",
      ].join("\n"),
    );
    server = await startServerProcess({ models: { stories: storiesModelPath }, args: ["--config", config] });
    const create = async (args: string[]) => {
      const result = await runCli(["keys", "create", ...args], { env: { FREEHOLD_HOME: server.home } });
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.trim();
    };
    admin = await create(["--name", "ops", "--admin"]);
    // Enough for a few gpt-4o answers of 100 tokens, not for one 4,000-token worst case on claude-opus-4.
    budgeted = await create(["--name", "capped", "--budget-usd", "0.02"]);
  });
  after(async () => {
    await server?.dispose();
    await cloud?.close();
    directory.dispose();
  });

  const ask = (key: string, model: string, maxTokens: number) =>
    postJson(
      `${server.url}/v1/chat/completions`,
      { model, messages: [{ role: "user", content: "Say hello" }], max_tokens: maxTokens, temperature: 0 },
      { headers: { authorization: `Bearer ${key}` } },
    );

  test("an answer from a paid provider is in the ledger under that provider and model, with its real cost", async () => {
    const response = await ask(admin, "paid", 50);
    assert.equal(response.status, 200);
    const requestId = response.headers.get("x-request-id")!;
    const local = await ask(admin, "stories", 5);
    assert.equal(local.status, 200);
    const db = new Database(join(server.home, "freehold.db"), { readonly: true });
    try {
      const row = db
        .prepare("SELECT provider, model, cost_usd, prompt_tokens, completion_tokens FROM ledger WHERE request_id = ?")
        .get(requestId) as {
        provider: string;
        model: string;
        cost_usd: number;
        prompt_tokens: number;
        completion_tokens: number;
      };
      assert.equal(row.provider, "cloud");
      assert.equal(row.model, "gpt-4o");
      // gpt-4o: $2.50 in, $10 out per million tokens; the fake cloud reports its own usage.
      const expected = (row.prompt_tokens * 2.5 + row.completion_tokens * 10) / 1e6;
      // The fake cloud's own usage: 7 prompt tokens, "Hello from the cloud." in 4 deltas.
      assert.equal(row.prompt_tokens, 7);
      assert.equal(row.completion_tokens, 4);
      assert.ok(Math.abs(row.cost_usd - expected) < 1e-12, `${row.cost_usd} vs ${expected}`);
      const localRow = db
        .prepare("SELECT provider, cost_usd FROM ledger WHERE request_id = ?")
        .get(local.headers.get("x-request-id")) as { provider: string; cost_usd: number };
      assert.deepEqual(localRow, { provider: "local", cost_usd: 0 });
    } finally {
      db.close();
    }
  });

  test("explain answers only the key that made the request, or an admin key (issue 13 item 11)", async () => {
    const create = async (name: string) => {
      const result = await runCli(["keys", "create", "--name", name], { env: { FREEHOLD_HOME: server.home } });
      assert.equal(result.code, 0, result.stderr);
      return result.stdout.trim();
    };
    const owner = await create("explain-owner");
    const other = await create("explain-other");
    const response = await ask(owner, "paid", 5);
    assert.equal(response.status, 200);
    await response.text();
    const requestId = response.headers.get("x-request-id")!;
    const explain = (key: string) =>
      fetch(`${server.url}/freehold/explain/${requestId}`, { headers: { authorization: `Bearer ${key}` } });
    const own = await explain(owner);
    assert.equal(own.status, 200);
    assert.equal(((await own.json()) as { requestId: string }).requestId, requestId);
    const foreign = await explain(other);
    assert.equal(foreign.status, 404, "another key's request reads as unknown");
    assert.doesNotMatch(await foreign.text(), /paid|cloud|gpt-4o/);
    assert.equal((await explain(admin)).status, 200);
    assert.equal((await fetch(`${server.url}/freehold/explain/${requestId}`)).status, 401);
  });

  test("explain still answers after a restart: decisions are read back from the audit trail", async () => {
    const response = await ask(admin, "paid", 5);
    assert.equal(response.status, 200);
    const requestId = response.headers.get("x-request-id")!;
    const again = await startServerProcess({ args: ["--config", config], env: { FREEHOLD_HOME: server.home } });
    try {
      const explained = await fetch(`${again.url}/freehold/explain/${requestId}`, {
        headers: { authorization: `Bearer ${admin}` },
      });
      assert.equal(explained.status, 200);
      const decision = (await explained.json()) as {
        requestId: string;
        outcome: string;
        servedBy: { provider: string };
      };
      assert.equal(decision.requestId, requestId);
      assert.equal(decision.outcome, "served");
      assert.equal(decision.servedBy.provider, "cloud");
      const unknown = await fetch(`${again.url}/freehold/explain/req_unknown`, {
        headers: { authorization: `Bearer ${admin}` },
      });
      assert.equal(unknown.status, 404);
    } finally {
      await again.dispose();
    }
  });

  test("a budget reserves the costliest target a route may fall back to, before anything runs", async () => {
    // The route's first target is local (free), but it may fall back to claude-opus-4: the worst case is priced there.
    const refused = await ask(budgeted, "pricey-fallback", 4000);
    assert.equal(refused.status, 429);
    const body = (await refused.json()) as { error: { message: string } };
    assert.match(body.error.message, /budget/i);
    assert.equal(
      cloud.received.length > 0 ? cloud.received.at(-1)?.body?.model : undefined,
      cloud.received.length > 0 ? "gpt-4o" : undefined,
    );
    // A small request fits: the same route, the same key.
    const small = await ask(budgeted, "pricey-fallback", 5);
    assert.equal(small.status, 200);
  });

  test("after all that routing, the audit trail verifies: every remote ledger row has its decision", async () => {
    const verified = await runCli(["audit", "verify", "--format", "json"], { env: { FREEHOLD_HOME: server.home } });
    const result = JSON.parse(verified.stdout) as { ok: boolean; keyed: boolean; problems: string[] };
    assert.deepEqual(result.problems, []);
    assert.equal(result.keyed, true);
    assert.equal(verified.code, 0);
  });
});
