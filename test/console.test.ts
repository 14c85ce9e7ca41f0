// The web console at /console/: how it is served (headers, traversal, no key for its files), the admin and account
// endpoints its pages read, and every page driven in Debian's headless Chromium, found by role and accessible name.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Browser, Page } from "playwright-core";
import { runCli } from "./helpers/cli.js";
import { type FakeHub, startFakeHub } from "./helpers/fakeHub.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fakeUpstream.js";
import { projectRoot, storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

const chromium = "/usr/bin/chromium";
const built = resolve(projectRoot, "dist", "console");
/** Set CONSOLE_SCREENSHOTS=docs/console to refresh the pictures in docs/console.md. */
const screenshots = process.env.CONSOLE_SCREENSHOTS ? resolve(projectRoot, process.env.CONSOLE_SCREENSHOTS) : undefined;

/** Newest modification time under a path (files only). */
function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))));
}

/** `npm ci` builds the console; a test run after editing console/ rebuilds it so the browser sees the edit. */
function buildConsoleIfStale(): void {
  const index = join(built, "index.html");
  if (existsSync(index) && statSync(index).mtimeMs >= newest(resolve(projectRoot, "console"))) return;
  const result = spawnSync("npm", ["run", "build:console"], { cwd: projectRoot, encoding: "utf8" });
  assert.equal(result.status, 0, `the console build failed:\n${result.stdout}\n${result.stderr}`);
}

/** A GET with the path sent byte for byte (fetch would resolve "..", which is what an attacker's client does not). */
function rawGet(
  url: string,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolvePromise, reject) => {
    const request = httpRequest({ host: hostname, port, path, method: "GET", headers }, (response) => {
      let body = "";
      response.setEncoding("utf8");
      response.on("data", (chunk) => {
        body += chunk;
      });
      response.on("end", () => resolvePromise({ status: response.statusCode ?? 0, headers: response.headers, body }));
    });
    request.on("error", reject);
    request.end();
  });
}

describe("the web console", { skip: storiesModelMissing }, () => {
  const directory = temporaryDirectory("freehold-console-");
  const config = join(directory.path, "freehold.yaml");
  let server: ServerProcess;
  let cloud: FakeUpstream;
  let hub: FakeHub;
  let admin: string;
  let plain: string;
  let browser: Browser;
  let evaluation: ReturnType<typeof runCli>;

  const createKey = async (args: string[]) => {
    const result = await runCli(["keys", "create", ...args], { env: { FREEHOLD_HOME: server.home } });
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim();
  };
  const get = (path: string, key?: string) =>
    fetch(`${server.url}${path}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
  const send = (method: string, path: string, body: unknown, key: string) =>
    fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  before(async () => {
    buildConsoleIfStale();
    cloud = await startFakeUpstream();
    cloud.behave = () => ({ kind: "reply", text: "A paid model's answer, in several words." });
    hub = await startFakeHub({
      "owner/tiny-GGUF": {
        // Not byte-identical to the imported stories model: the store shares identical blobs and would skip the download.
        files: [
          { path: "tiny-Q4_K_M.gguf", bytes: Buffer.concat([readFileSync(storiesModelPath), Buffer.alloc(4096)]) },
        ],
        slow: { chunkBytes: 64 * 1024, delayMs: 60 },
      },
    });
    writeFileSync(
      config,
      [
        "providers:",
        `  cloud: { kind: openai, base_url: "${cloud.openaiBase}", api_key: sk-console-test-000000000 }`,
        "routes:",
        "  paid: { privacy: allow, targets: [{ provider: cloud, model: gpt-4o }] }",
        "  smart: { privacy: allow, targets: [{ provider: cloud, model: gpt-4o-mini }, { provider: local, model: stories }] }",
        "",
      ].join("\n"),
    );
    server = await startServerProcess({
      models: { stories: storiesModelPath, "stories-b": storiesModelPath },
      args: ["--config", config],
      env: { HF_ENDPOINT: hub.url },
    });
    // An evaluation run for the Evaluations page, recorded by the CLI while the other tests run (it loads its own
    // copy of the model, which takes a while on two cores).
    const suite = join(directory.path, "suite.yaml");
    writeFileSync(
      suite,
      [
        "name: console-check",
        "defaults: { temperature: 0, max_tokens: 8 }",
        "cases:",
        "  - id: short",
        "    prompt: Once upon a time",
        "    assert: [{ type: max-tokens, value: 8 }]",
        "  - id: dragon",
        "    prompt: Once upon a time",
        "    assert: [{ type: contains, value: dragon }]",
        "",
      ].join("\n"),
    );
    evaluation = runCli(["eval", suite, "--models", "stories"], {
      env: { FREEHOLD_HOME: server.home },
      timeoutMs: 90_000,
    });
    assert.ok(existsSync(chromium), `Chromium is missing at ${chromium}: install it (apt-get install -y chromium)`);
    const { chromium: launcher } = await import("playwright-core");
    browser = await launcher.launch({
      executablePath: chromium,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
  });

  after(async () => {
    await browser?.close();
    await server?.dispose();
    await cloud?.close();
    await hub?.close();
    directory.dispose();
  });

  test("with no keys on a loopback server the console opens without a sign-in", async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${server.url}/console/`);
      await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name: "Keys" }).waitFor();
      await page.getByText("open loopback server").waitFor();
      assert.equal(await page.getByLabel("API key").count(), 0);
    } finally {
      await page.close();
    }
  });

  describe("serving", () => {
    before(async () => {
      admin = await createKey(["--name", "ops", "--admin"]);
      plain = await createKey(["--name", "reader"]);
    });

    test("/console redirects to /console/, which is HTML under a strict CSP, with no key needed", async () => {
      const redirect = await rawGet(server.url, "/console?x=1");
      assert.equal(redirect.status, 301);
      assert.equal(redirect.headers.location, "/console/?x=1");

      const page = await get("/console/");
      assert.equal(page.status, 200, "the page itself holds no data: no key");
      assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
      assert.equal(page.headers.get("cache-control"), "no-cache");
      assert.equal(page.headers.get("x-content-type-options"), "nosniff");
      const csp = page.headers.get("content-security-policy") ?? "";
      for (const directive of [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "form-action 'none'",
      ])
        assert.ok(csp.includes(directive), `${directive} in ${csp}`);
      assert.doesNotMatch(csp, /script-src[^;]*unsafe/, "no inline or eval'd script");
      const html = await page.text();
      assert.doesNotMatch(html, /https?:\/\//, "nothing is fetched from elsewhere");

      const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(html)?.[1];
      assert.ok(script, html);
      const asset = await get(script);
      assert.equal(asset.status, 200);
      assert.equal(asset.headers.get("content-type"), "text/javascript; charset=utf-8");
      assert.equal(asset.headers.get("cache-control"), "public, max-age=31536000, immutable");
      assert.doesNotMatch(
        await asset.text(),
        /https?:\/\/(?!www\.w3\.org)[a-z]/i,
        "no URL to another host in the bundle",
      );
    });

    test("no spelling of a path outside the folder reaches a file, however it is encoded", async () => {
      const secretFile = readFileSync(resolve(projectRoot, "package.json"), "utf8");
      const attempts = [
        "/console/../package.json",
        "/console/..%2fpackage.json",
        "/console/..%2Fpackage.json",
        "/console/%2e%2e/package.json",
        "/console/%2e%2e%2fpackage.json",
        "/console/%2E%2E%2F%2E%2E%2Fpackage.json",
        "/console/assets/..%2f..%2f..%2fpackage.json",
        "/console/assets/%2e%2e/%2e%2e/%2e%2e/package.json",
        "/console/..%5c..%5cpackage.json",
        "/console/%252e%252e%252fpackage.json",
        "/console/....//....//package.json",
        "/console/.%2e/.%2e/.%2e/package.json",
        "/console/%2fetc%2fpasswd",
        "/console//etc/passwd",
        "/console/index.html%00.js",
        "/console/%c0%ae%c0%ae/package.json",
        "/console/%",
        "/console/assets",
        "/console/assets/",
        "/console/.vite/manifest.json",
      ];
      for (const path of attempts) {
        const response = await rawGet(server.url, path);
        assert.notEqual(response.body, secretFile, path);
        assert.doesNotMatch(response.body, /root:x:0:0|"name": "freehold"/, path);
        // "/console/../package.json" is resolved by the URL parser to /package.json: an unknown API URL.
        assert.ok([400, 401, 404].includes(response.status), `${path}: ${response.status}`);
      }
      const unknown = await get("/console/nothing-here.js");
      assert.equal(unknown.status, 404);
      assert.match(((await unknown.json()) as { error: { message: string } }).error.message, /open \/console\//);
    });

    test("GET / (Ollama clients' probe) and the API are unchanged", async () => {
      const root = await get("/");
      assert.equal(await root.text(), "freehold is running");
      assert.equal((await get("/v1/models")).status, 401, "the API still needs a key once keys exist");
    });
  });

  describe("endpoints for the console", () => {
    test("whoami says whether a key is needed and whether the caller is an admin", async () => {
      assert.equal((await get("/freehold/whoami")).status, 401);
      const me = (await (await get("/freehold/whoami", admin)).json()) as { key: { id: string } };
      assert.deepEqual(me, { keys_required: true, key: { id: me.key.id, name: "ops" }, admin: true });
      const who = (await (await get("/freehold/whoami", plain)).json()) as { admin: boolean; key: { name: string } };
      assert.equal(who.admin, false);
      assert.equal(who.key.name, "reader");
    });

    test("admin pages' data needs an admin key; a plain key is refused in words", async () => {
      for (const path of ["/admin/routes", "/admin/evals", "/admin/audit/verify", "/admin/evals/x/report"]) {
        const refused = await get(path, plain);
        assert.equal(refused.status, 403, path);
        assert.match(((await refused.json()) as { error: { message: string } }).error.message, /admin key/);
        assert.equal((await get(path)).status, 401, path);
      }
      const patch = await send("PATCH", "/admin/keys/reader", { rpm: 5 }, plain);
      assert.equal(patch.status, 403);
    });

    test("PATCH /admin/keys/:id changes limits, names a bad field, and refuses unknown fields", async () => {
      const changed = await send("PATCH", "/admin/keys/reader", { rpm: 600, daily_tokens: null }, admin);
      assert.equal(changed.status, 200);
      const key = (await changed.json()) as { name: string; rpm: number; daily_tokens: null };
      assert.equal(key.rpm, 600);
      assert.equal(key.daily_tokens, null);
      for (const [body, field] of [
        [{ rpm: -1 }, "rpm"],
        [{ rpm: "many" }, "rpm"],
        [{ budget_usd: -5 }, "budget_usd"],
        [{ name: "renamed" }, "name"],
        [{ secret: "x" }, "secret"],
        [[], ""],
      ] as const) {
        const response = await send("PATCH", "/admin/keys/reader", body, admin);
        assert.equal(response.status, 400, JSON.stringify(body));
        assert.match(JSON.stringify(await response.json()), new RegExp(field), JSON.stringify(body));
      }
      const missing = await send("PATCH", "/admin/keys/nobody", { rpm: 1 }, admin);
      assert.equal(missing.status, 404);
      await send("PATCH", "/admin/keys/reader", { rpm: null }, admin);
    });

    test("the audit trail filters by action prefix and actor, literally, and verifies", async () => {
      const keyChanges = (await (await get("/admin/audit?action=key.&limit=50", admin)).json()) as {
        entries: { action: string; actor: string }[];
      };
      assert.ok(keyChanges.entries.length >= 2);
      assert.ok(keyChanges.entries.every((entry) => entry.action.startsWith("key.")));
      const byActor = (await (await get("/admin/audit?actor=key:ops", admin)).json()) as {
        entries: { actor: string }[];
      };
      assert.ok(byActor.entries.length >= 1 && byActor.entries.every((entry) => entry.actor === "key:ops"));
      // "%" and "_" are not wildcards: a filter of "%" matches only actions starting with a percent sign.
      for (const wildcard of ["%", "_", "k_y.", "\\"]) {
        const none = (await (await get(`/admin/audit?action=${encodeURIComponent(wildcard)}`, admin)).json()) as {
          entries: unknown[];
        };
        assert.deepEqual(none.entries, [], wildcard);
      }
      const bad = await get("/admin/audit?sort=desc", admin);
      assert.equal(bad.status, 400);
      assert.match(JSON.stringify(await bad.json()), /sort/);
      const verify = (await (await get("/admin/audit/verify", admin)).json()) as { ok: boolean; entries: number };
      assert.equal(verify.ok, true);
      assert.ok(verify.entries >= 2);
    });

    test("a plain key's usage is its own, whatever it asks for; one request's ledger row is its owner's", async () => {
      const own = await postJson(
        `${server.url}/v1/chat/completions`,
        { model: "stories", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 4 },
        { headers: { authorization: `Bearer ${plain}` } },
      );
      assert.equal(own.status, 200);
      const requestId = own.headers.get("x-request-id")!;
      await own.text();
      const other = await postJson(
        `${server.url}/v1/chat/completions`,
        { model: "stories", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 4 },
        { headers: { authorization: `Bearer ${admin}` } },
      );
      const otherId = other.headers.get("x-request-id")!;
      await other.text();

      for (const query of ["by=key", "by=hour,model&since=1d", "by=key,model"]) {
        const response = await get(`/freehold/usage?${query}`, plain);
        assert.equal(response.status, 200, query);
        const lines = ((await response.json()) as { data: { group: Record<string, string> }[] }).data;
        assert.ok(lines.length >= 1, query);
        if (query.startsWith("by=key"))
          assert.deepEqual(
            lines.map((line) => line.group.key),
            ["reader"],
            query,
          );
      }
      assert.equal((await get("/freehold/usage?key=ops", plain)).status, 400, "key is not a filter a caller sets");
      const all = (
        (await (await get("/freehold/usage?by=key", admin)).json()) as { data: { group: { key: string } }[] }
      ).data;
      assert.ok(all.some((line) => line.group.key === "ops") && all.some((line) => line.group.key === "reader"));
      const hourly = (
        (await (await get("/freehold/usage?by=hour", admin)).json()) as { data: { group: { hour: string } }[] }
      ).data;
      assert.match(hourly[0]!.group.hour, /^\d{4}-\d{2}-\d{2}T\d{2}:00Z$/);
      const csv = await get("/freehold/usage?by=model&format=csv", plain);
      assert.equal(csv.headers.get("content-type"), "text/csv; charset=utf-8");
      assert.match(await csv.text(), /^MODEL,REQUESTS/);

      const row = await get(`/freehold/requests/${requestId}`, plain);
      assert.equal(row.status, 200);
      assert.equal(((await row.json()) as { keyName: string }).keyName, "reader");
      assert.equal((await get(`/freehold/requests/${otherId}`, plain)).status, 404, "another key's request");
      assert.equal((await get(`/freehold/requests/${otherId}`, admin)).status, 200);
      assert.equal((await get("/freehold/requests/req_unknown", admin)).status, 404);
    });

    test("routes show targets with health and breaker state; evaluation reports are 404 when unknown", async () => {
      const body = (await (await get("/admin/routes", admin)).json()) as {
        routes: { name: string; tiers: { provider: string; breaker: string; healthy: boolean; origin: string }[][] }[];
      };
      const smart = body.routes.find((route) => route.name === "smart")!;
      assert.deepEqual(
        smart.tiers.map((tier) => tier.map((target) => [target.provider, target.breaker, target.healthy])),
        [[["cloud", "closed", true]], [["local", "closed", true]]],
      );
      assert.equal((await get("/admin/routes?limit=0", admin)).status, 400);
      const evals = await get("/admin/evals", admin);
      assert.equal(evals.status, 200);
      assert.ok(Array.isArray(((await evals.json()) as { data: unknown[] }).data));
      const missing = await get("/admin/evals/run_nothing/report", admin);
      assert.equal(missing.status, 404);
      assert.match(JSON.stringify(await missing.json()), /GET \/admin\/evals lists them/);
    });
  });

  describe("in Chromium", () => {
    let page: Page;
    const offMachine: string[] = [];
    const shot = async (name: string) => {
      const bytes = await page.screenshot({ type: "png" });
      assert.ok(bytes.length > 5_000, `${name}: a screenshot with content`);
      const folder = screenshots ?? join(directory.path, "screenshots");
      mkdirSync(folder, { recursive: true });
      writeFileSync(join(folder, `${name}.png`), bytes);
    };
    const literally = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const referenceAnswer = async () => {
      const response = await postJson(
        `${server.url}/v1/chat/completions`,
        { model: "stories", messages: [{ role: "user", content: "Once upon a time" }], max_tokens: 10, temperature: 0 },
        { headers: { authorization: `Bearer ${admin}` } },
      );
      return (
        (await response.json()) as { choices: { message: { content: string } }[] }
      ).choices[0]!.message.content.trim();
    };
    const go = async (name: string) => {
      await page.getByRole("navigation", { name: "Console" }).getByRole("link", { name, exact: true }).click();
      await page.getByRole("heading", { level: 1, name }).waitFor();
    };

    before(async () => {
      const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
      await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
      page = await context.newPage();
      page.setDefaultTimeout(15_000);
      page.on("request", (request) => {
        const url = request.url();
        if (!url.startsWith(server.url) && !url.startsWith("data:") && !url.startsWith("blob:")) offMachine.push(url);
      });
    });

    test("sign in: a wrong key is refused in words, the right one opens the console", async () => {
      await page.goto(`${server.url}/console`);
      const field = page.getByLabel("API key");
      await field.fill("fh-not-a-real-key-0000000000000000");
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.getByRole("alert").filter({ hasText: /key/i }).waitFor();
      await shot("sign-in");
      // By keyboard: type the key and press Enter.
      await field.fill(admin);
      await field.press("Enter");
      const nav = page.getByRole("navigation", { name: "Console" });
      for (const name of ["Playground", "Models", "Usage", "Keys", "Audit", "Routes", "Evaluations"])
        await nav.getByRole("link", { name, exact: true }).waitFor();
      assert.equal(await page.evaluate("document.cookie"), "", "no cookie");
      assert.equal(await page.evaluate("sessionStorage.getItem('freehold.key')"), admin);
    });

    test("the playground streams an answer from stories260K with TTFT and tokens/s", async () => {
      await go("Playground");
      await page.getByLabel("Model", { exact: true }).selectOption("stories:latest");
      await page.getByText("Settings").click();
      await page.getByLabel("Temperature").fill("0");
      await page.getByLabel("Max tokens").fill("10");
      await page.getByLabel("Message").fill("Once upon a time");
      await page.getByRole("button", { name: "Send" }).click();
      const stats = page.locator(".playground > .stats");
      await stats.waitFor({ timeout: 20_000 });
      assert.match(
        await stats.innerText(),
        /TTFT \d+ ms · [\d.]+ tokens\/s · latency \d+ ms · \d+ prompt \+ \d+ completion/,
      );
      // At temperature 0 the streamed answer is the one the API gives whole.
      const expected = await referenceAnswer();
      assert.ok(expected.length > 0);
      const turns = page.getByRole("log", { name: "Conversation" }).locator(".turn");
      assert.deepEqual(await turns.allInnerTexts(), ["You Once upon a time", `Model ${expected}`.trim()]);
      await shot("playground");
    });

    test("compare: the same prompt on a local model and a paid route, each with latency, tokens and cost", async () => {
      await page.getByLabel("Model", { exact: true }).selectOption("stories:latest");
      await page.getByLabel("Second model").selectOption("paid");
      await page.getByLabel("Message").fill("Once upon a time");
      await page.getByRole("button", { name: "Compare" }).click();
      const local = page.getByRole("region", { name: "Answer from stories:latest" });
      const paid = page.getByRole("region", { name: "Answer from paid" });
      await local.getByText(/cost (\$|—)/).waitFor({ timeout: 20_000 });
      await paid.getByText(/cost (\$|—)/).waitFor();
      assert.match(await local.locator(".answer").innerText(), new RegExp(literally(await referenceAnswer())));
      assert.equal(await paid.locator(".answer").innerText(), "A paid model's answer, in several words.");
      assert.match(await local.innerText(), /latency \d+ ms · \d+ prompt \+ 10 completion tokens · cost \$/);
      assert.match(await paid.innerText(), /7 prompt \+ \d+ completion tokens · cost \$0\.\d+/);
      assert.doesNotMatch(await paid.innerText(), /cost \$0(?!\.)/, "a paid answer has a price");
      await shot("compare");
    });

    test("keys: create one (its secret shown once, with a copy button), then revoke it", async () => {
      await go("Keys");
      await page.getByRole("button", { name: "Create key" }).click();
      await page.getByLabel("Name", { exact: true }).fill("ci-bot");
      await page.getByLabel("Requests per minute").fill("30");
      await page.getByRole("button", { name: "Create", exact: true }).click();
      const secretBox = page.getByRole("region", { name: "New key secret" });
      const secret = (await secretBox.locator("code").innerText()).trim();
      assert.match(secret, /^fh-/);
      await secretBox.getByRole("button", { name: "Copy" }).click();
      await secretBox.getByRole("status").filter({ hasText: "Copied." }).waitFor();
      assert.equal(await page.evaluate("navigator.clipboard.readText()"), secret);
      assert.equal((await get("/v1/models", secret)).status, 200, "the new key works");
      const row = page.getByRole("row").filter({ hasText: "ci-bot" });
      assert.match(await row.innerText(), /30 rpm/);
      await shot("keys");
      await page.getByRole("button", { name: "Done" }).click();
      await page.getByRole("button", { name: "Edit limits of reader" }).click();
      const limits = page.getByRole("form", { name: "Limits of reader" });
      await limits.getByLabel("Tokens per minute").fill("5000");
      await limits.getByRole("button", { name: "Save" }).click();
      await page.getByRole("row").filter({ hasText: "reader" }).getByText("5000 tpm").waitFor();
      const reader = ((await (await get("/admin/keys", admin)).json()) as { data: { name: string; tpm: number }[] })
        .data;
      assert.equal(reader.find((key) => key.name === "reader")?.tpm, 5000);
      await send("PATCH", "/admin/keys/reader", { tpm: null }, admin);
      await page.getByRole("button", { name: "Revoke ci-bot" }).click();
      await page.getByRole("button", { name: "Revoke ci-bot" }).waitFor({ state: "detached" });
      assert.equal((await get("/v1/models", secret)).status, 401, "the revoked key no longer works");
    });

    test("usage: the tokens chart and the cost chart after traffic, and the table", async () => {
      await go("Usage");
      const chart = page.getByRole("img", { name: "Tokens over time" });
      await chart.waitFor();
      const canvas = await chart.locator("canvas").boundingBox();
      assert.ok(canvas && canvas.width > 300 && canvas.height > 100, JSON.stringify(canvas));
      await page.getByRole("img", { name: "Cost vs the paid equivalent" }).waitFor();
      // Split by key: one series per key that used tokens in the range, named in the chart's legend.
      await page.getByLabel("Split tokens by").selectOption("key");
      await chart.locator(".u-legend").getByText("reader").waitFor();
      assert.match(await chart.locator(".u-legend").innerText(), /ops[\s\S]*reader|reader[\s\S]*ops/);
      await page.getByLabel("Split tokens by").selectOption("");
      const table = page.getByRole("table", { name: "Usage by key, model and provider" });
      await table.getByRole("row").filter({ hasText: "stories" }).first().waitFor();
      assert.match(await table.innerText(), /ops\s+paid|ops\s+gpt-4o/);
      const download = page.waitForEvent("download");
      await page.getByRole("button", { name: "Download CSV" }).click();
      const file = await (await download).path();
      assert.match(readFileSync(file, "utf8"), /^KEY,MODEL,PROVIDER,REQUESTS/);
      await shot("usage");
    });

    test("audit: the Verify button says the chain is intact", async () => {
      await go("Audit");
      await page.getByRole("table", { name: "Audit entries" }).getByText("key.revoke").waitFor();
      await page.getByRole("button", { name: "Verify" }).click();
      const status = page.getByRole("status");
      await status.waitFor();
      assert.match(await status.innerText(), /The chain is intact: \d+ entries/);
      await page.getByLabel("Action starts with").fill("key.");
      await page.getByRole("button", { name: "Filter" }).click();
      // Polled through locators, not page.waitForFunction: a string predicate is an eval, which the console's CSP forbids.
      const actions = page.getByRole("table", { name: "Audit entries" }).locator("tbody tr td:nth-child(4)");
      const deadline = Date.now() + 10_000;
      let cells = await actions.allInnerTexts();
      while (!(cells.length > 0 && cells.every((cell) => cell.startsWith("key."))) && Date.now() < deadline) {
        await page.waitForTimeout(50);
        cells = await actions.allInnerTexts();
      }
      assert.ok(cells.length > 0, "the filter left no entries");
      assert.deepEqual(
        cells.filter((cell) => !cell.startsWith("key.")),
        [],
        "every entry shown after filtering by key. is a key action",
      );
      await shot("audit");
    });

    test("models: pull from the loopback hub with the progress bar moving, then remove it", async () => {
      await go("Models");
      await page.getByRole("table").first().getByText("stories-b").waitFor();
      await page.getByLabel("Model to pull").fill("hf.co/owner/tiny-GGUF");
      await page.getByRole("button", { name: "Pull", exact: true }).click();
      const bar = page.getByRole("progressbar", { name: "Pull progress" });
      await bar.waitFor();
      // Sample the bar while the (slowed) download runs: it must pass through values between 0 and 100.
      const seen = new Set<number>();
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const value = Number(await bar.getAttribute("value"));
        seen.add(value);
        if (value === 100) break;
        await page.waitForTimeout(40);
      }
      const between = [...seen].filter((value) => value > 0 && value < 100);
      assert.ok(between.length >= 2, `the bar moved through ${[...seen].join(", ")}`);
      await page.getByRole("status").filter({ hasText: "Pulled hf.co/owner/tiny-GGUF." }).waitFor({ timeout: 15_000 });
      const installed = page.getByRole("region", { name: "Installed models" });
      const pulled = installed.getByRole("row").filter({ hasText: "tiny" });
      await pulled.waitFor();
      await shot("models");
      const name = (await pulled.getByRole("cell").first().innerText()).trim();
      page.once("dialog", (dialog) => void dialog.accept());
      await page.getByRole("button", { name: `Remove ${name}` }).click();
      await pulled.waitFor({ state: "detached" });
      // Load a model, see it with its memory and slots, unload it.
      await page.getByRole("button", { name: "Load stories-b:latest" }).click();
      const loaded = page
        .getByRole("region", { name: "Loaded models" })
        .getByRole("row")
        .filter({ hasText: "stories-b" });
      await loaded.waitFor({ timeout: 20_000 });
      assert.match(await loaded.innerText(), /stories-b:latest\s+[\d.]+ [KMG]B\s+\w+\s+\d+/);
      await page.getByRole("button", { name: "Unload stories-b:latest" }).click();
      await loaded.waitFor({ state: "detached", timeout: 20_000 });
    });

    test("routes: targets with health and breaker state, and why a request went where it did", async () => {
      await go("Routes");
      const smart = page.getByRole("region", { name: "Route smart" });
      await smart.getByText("closed").first().waitFor();
      assert.match(await smart.innerText(), /cloud\/gpt-4o-mini[\s\S]*healthy[\s\S]*local\/stories/);
      await page.getByRole("table", { name: "Recent decisions" }).getByText("paid").first().waitFor();
      await page.getByRole("table", { name: "Recent decisions" }).getByRole("button").first().click();
      await page.getByRole("region", { name: "Why it went there" }).waitFor();
      await shot("routes");
      await page.getByLabel("Request id").fill("req_nothing");
      await page.getByRole("button", { name: "Explain" }).click();
      await page.getByRole("alert").filter({ hasText: "No routing decision is kept" }).waitFor();
    });

    test("evaluations: a run's pass rate with its interval, and its HTML report opened in a sandboxed frame", async () => {
      await go("Evaluations");
      const evaluated = await evaluation;
      assert.ok(evaluated.code === 0 || evaluated.code === 1, evaluated.stderr);
      await page.reload();
      const runs = page.getByRole("table", { name: "Evaluation runs" });
      const row = runs.getByRole("row").filter({ hasText: "console-check" });
      await row.waitFor();
      assert.match(await row.innerText(), /stories(:latest)?: 50% \(\d+%–\s*\d+%\)/);
      await row.getByRole("button", { name: /^Open report of / }).click();
      const frame = page.frameLocator("iframe[title^='Evaluation report']");
      await frame.getByText("console-check").first().waitFor();
      assert.equal(await page.locator("iframe.report").getAttribute("sandbox"), "", "no scripts, no same-origin");
      await shot("evaluations");
    });

    test("a plain key sees the playground and its own usage only", async () => {
      const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
      try {
        const phone = await context.newPage();
        await phone.goto(`${server.url}/console/`);
        await phone.getByLabel("API key").fill(plain);
        await phone.getByRole("button", { name: "Sign in" }).click();
        const nav = phone.getByRole("navigation", { name: "Console" });
        await nav.getByRole("link", { name: "Usage" }).waitFor();
        assert.deepEqual(await nav.getByRole("link").allInnerTexts(), ["Playground", "Usage"]);
        // Phone width: nothing wider than the screen.
        assert.ok(await phone.evaluate("document.documentElement.scrollWidth <= innerWidth"));
        await nav.getByRole("link", { name: "Usage" }).click();
        const table = phone.getByRole("table", { name: "Usage by key, model and provider" });
        await table.getByRole("row").nth(1).waitFor();
        const keys = await table.locator("tbody tr td:first-child").allInnerTexts();
        assert.deepEqual([...new Set(keys)], ["reader"]);
        await phone.goto(`${server.url}/console/#/keys`);
        await phone.getByRole("heading", { level: 1, name: "Playground" }).waitFor();
        await phone.screenshot({ path: join(screenshots ?? directory.path, "phone.png") });
      } finally {
        await context.close();
      }
    });

    test("nothing on the page made a request off the machine", () => {
      assert.deepEqual(offMachine, []);
    });
  });
});
