import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseFileConfig } from "../src/config/fileConfig.js";
import type { ChatEvent } from "../src/core/chat.js";
import type { CallerKey, RequestContext } from "../src/core/context.js";
import { RateLimitError } from "../src/core/errors.js";
import { Freehold } from "../src/main.js";
import { McpHub } from "../src/mcp/hub.js";
import { type HttpMcpServer, startHttpMcpServer, writeStdioMcpServer } from "./helpers/mcpServers.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";

function context(key?: Partial<CallerKey>): RequestContext {
  return {
    requestId: `req_${Math.random().toString(36).slice(2)}`,
    api: "openai",
    route: "/v1/responses",
    ...(key
      ? {
          key: {
            id: "k",
            name: "someone",
            admin: false,
            models: null,
            localOnly: false,
            storeContent: false,
            ...key,
          },
        }
      : {}),
  };
}

async function waitFor(check: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("mcp_servers in freehold.yaml", () => {
  const parse = (text: string) => parseFileConfig(text, "freehold.yaml", {});
  test("stdio and HTTP servers, with defaults", () => {
    const file = parse(
      "mcp_servers:\n  files:\n    command: [node, server.js]\n  search:\n    url: https://mcp.example.com/mcp\n",
    );
    assert.deepEqual(file.mcp_servers.files?.command, ["node", "server.js"]);
    assert.equal(file.mcp_servers.files?.timeout, 30);
    assert.equal(file.mcp_servers.search?.max_result_bytes, 65_536);
    assert.equal(file.mcp_max_steps, 8);
  });
  const bad: [string, string, RegExp][] = [
    ["neither", "mcp_servers:\n  x:\n    timeout: 3\n", /freehold\.yaml:3: mcp_servers\.x: needs command/],
    ["both", "mcp_servers:\n  x:\n    command: [a]\n    url: http://h/\n", /mcp_servers\.x\.url: give either/],
    ["env on url", "mcp_servers:\n  x:\n    url: http://h/\n    env: {A: b}\n", /mcp_servers\.x\.env: env and cwd/],
    [
      "headers on stdio",
      "mcp_servers:\n  x:\n    command: [a]\n    headers: {A: b}\n",
      /x\.headers: headers are for HTTP/,
    ],
    [
      "remote: false off-machine",
      "mcp_servers:\n  x:\n    url: https://mcp.example.com/\n    remote: false\n",
      /x\.remote: mcp\.example\.com is not this machine/,
    ],
    ["bad url", "mcp_servers:\n  x:\n    url: ftp://h/\n", /mcp_servers\.x\.url/],
    ["empty command", "mcp_servers:\n  x:\n    command: []\n", /mcp_servers\.x\.command/],
    ["bad name", "mcp_servers:\n  'a b':\n    command: [a]\n", /MCP server names/],
    ["bad env name", "mcp_servers:\n  x:\n    command: [a]\n    env: {'A-B': c}\n", /environment names/],
    ["zero timeout", "mcp_servers:\n  x:\n    command: [a]\n    timeout: 0\n", /mcp_servers\.x\.timeout/],
    ["tiny cap", "mcp_servers:\n  x:\n    command: [a]\n    max_result_bytes: 10\n", /max_result_bytes/],
    ["unknown field", "mcp_servers:\n  x:\n    command: [a]\n    args: [b]\n", /x\.args: unknown field/],
    [
      "route names an unknown server",
      "routes:\n  r:\n    targets: [{provider: local, model: m}]\n    mcp: [nope]\n",
      /routes\.r\.mcp\[0\]: no MCP server named "nope"/,
    ],
    ["steps", "mcp_max_steps: 0\n", /mcp_max_steps/],
  ];
  for (const [name, text, message] of bad) test(`refused: ${name}`, () => assert.throws(() => parse(text), message));
});

describe("MCP client manager with real servers (stdio and Streamable HTTP)", () => {
  const files = temporaryDirectory();
  const script = writeStdioMcpServer(files.path);
  let http: HttpMcpServer;
  let hub: McpHub;
  const audit: { action: string; detail?: Record<string, unknown> }[] = [];
  const metrics: { server: string; tool: string; status: string }[] = [];
  const admitted: { kind: string; provider: string; model: string; requestId: string }[] = [];
  let rpmLeft = Number.POSITIVE_INFINITY;
  before(async () => {
    http = await startHttpMcpServer();
    const stdio = { command: [process.execPath, script], timeout: 1, max_result_bytes: 512 };
    hub = new McpHub({
      servers: {
        local: stdio,
        cloud: { url: http.url, remote: true, timeout: 5, max_result_bytes: 65_536 },
        nearby: { url: http.url, timeout: 5, max_result_bytes: 65_536 },
      },
      routes: {
        private: {
          targets: [{ provider: "local", model: "m", weight: 1 }],
          retries: 1,
          backoff: 0,
          max_retry_wait: 0,
          breaker: { failures: 3, cooldown: 1 },
          mcp: ["cloud"],
        },
      },
      keys: { "file-local": { local_only: true } },
      audit: { record: (event) => audit.push(event) },
      metrics: { observeMcpCall: (observation) => metrics.push(observation) },
      meter: {
        admit(work, callContext, target) {
          if (rpmLeft-- <= 0) {
            throw new RateLimitError("Rate limit reached for key someone: 1 requests per minute", "rpm_exceeded", 60);
          }
          admitted.push({
            kind: work.kind,
            provider: target.provider,
            model: target.model,
            requestId: callContext.requestId,
          });
          return { maxTokens: 0, settle: () => {} };
        },
      },
    });
  });
  after(async () => {
    await hub.close();
    await http.close();
    files.dispose();
  });

  test("a stdio server starts on first use, lists its tools and runs a call", async () => {
    assert.equal(hub.connection("local").pid, null, "not started before it is needed");
    const tools = await hub.listTools("local", { context: context() });
    assert.deepEqual(tools.map((tool) => tool.name).sort(), [
      "add_tool",
      "big",
      "crash",
      "echo",
      "fails",
      "slow",
      "whoami",
    ]);
    const echo = tools.find((tool) => tool.name === "echo")!;
    assert.equal(echo.readOnly, true);
    assert.deepEqual((echo.inputSchema as { properties: unknown }).properties, {
      fruit: { type: "string", enum: ["apple", "pear"] },
    });
    const pid = hub.connection("local").pid;
    const result = await hub.callTool("local", "echo", { fruit: "pear" }, { context: context() });
    assert.deepEqual(result, { output: `echo: pear from ${pid}`, isError: false });
  });

  test("a tool's own error is a result marked as one; a bad argument is the server's error too", async () => {
    assert.deepEqual(await hub.callTool("local", "fails", {}, { context: context() }), {
      output: "no such fruit",
      isError: true,
    });
    const bad = await hub.callTool("local", "echo", { fruit: "plum" }, { context: context() });
    assert.equal(bad.isError, true);
    assert.match(bad.output, /fruit/);
  });

  test("a dying server is restarted on the next use, and its tool list is fetched again", async () => {
    const connection = hub.connection("local");
    await hub.listTools("local", { context: context() });
    const first = Number((await hub.callTool("local", "whoami", {}, { context: context() })).output);
    const starts = connection.starts;
    await assert.rejects(
      hub.callTool("local", "crash", {}, { context: context() }),
      (error: Error & { code?: string }) => {
        assert.equal(error.code, "mcp_server_error");
        assert.match(error.message, /MCP server local failed while calling crash/);
        return true;
      },
    );
    await waitFor(() => connection.pid === null, "the dead server to be noticed");
    const second = Number((await hub.callTool("local", "whoami", {}, { context: context() })).output);
    assert.notEqual(second, first);
    assert.equal(connection.starts, starts + 1);
    assert.ok((await hub.listTools("local", { context: context() })).some((tool) => tool.name === "echo"));
  });

  test("the tool list is cached, and refreshed when the server sends notifications/tools/list_changed", async () => {
    const before = await hub.listTools("local", { context: context() });
    assert.equal(await hub.listTools("local", { context: context() }), before, "the same cached list");
    assert.ok(!before.some((tool) => tool.name === "late"));
    await hub.callTool("local", "add_tool", {}, { context: context() });
    await waitFor(
      async () => (await hub.listTools("local", { context: context() })).some((tool) => tool.name === "late"),
      "the new tool to be listed",
    );
  });

  test("a call past the server's timeout fails with mcp_timeout and says which setting to raise", async () => {
    const started = Date.now();
    await assert.rejects(
      hub.callTool("local", "slow", {}, { context: context() }),
      (error: Error & { code?: string; status?: number }) => {
        assert.equal(error.code, "mcp_timeout");
        assert.equal(error.status, 502);
        assert.match(error.message, /did not answer within 1 s .*mcp_servers\.local\.timeout/);
        return true;
      },
    );
    assert.ok(Date.now() - started < 2500);
  });

  test("a result longer than max_result_bytes is cut on a character boundary and says so", async () => {
    const { output } = await hub.callTool("local", "big", {}, { context: context() });
    const [kept, note] = output.split("\n");
    assert.equal(Buffer.byteLength(kept!), 512);
    assert.equal(kept, "é".repeat(256));
    assert.match(note!, /\[result cut: 2000 bytes, the limit is 512 \(mcp_servers\.local\.max_result_bytes\)\]/);
  });

  test("a Streamable HTTP server on loopback is local by default and works", async () => {
    assert.equal(hub.isRemote("nearby"), false);
    assert.equal(hub.isRemote("cloud"), true);
    const result = await hub.callTool("nearby", "lookup", { word: "tree" }, { context: context() });
    assert.deepEqual(result, { output: "definition of tree", isError: false });
  });

  test("a local-only key, a key local-only in freehold.yaml, or a local-only route never reaches a remote server", async () => {
    const before = http.requests;
    const refusals: [string, Parameters<McpHub["callTool"]>[3], RegExp][] = [
      ["local-only key", { context: context({ localOnly: true, name: "private" }) }, /API key private is local-only/],
      ["key in the file", { context: context({ name: "file-local" }) }, /API key file-local is local-only/],
      [
        "route with local targets only",
        { context: context(), model: "private" },
        /route private has only local targets/,
      ],
    ];
    for (const [what, access, reason] of refusals) {
      for (const attempt of [
        () => hub.listTools("cloud", access),
        () => hub.callTool("cloud", "lookup", { word: "secret" }, access),
      ])
        await assert.rejects(attempt(), (error: Error & { code?: string; status?: number }) => {
          assert.equal(error.status, 403, what);
          assert.equal(error.code, "mcp_remote_refused");
          assert.match(error.message, /MCP server cloud is remote/);
          assert.match(error.message, reason);
          return true;
        });
    }
    assert.equal(http.requests, before, "nothing reached the remote server");
    const offline = new McpHub({
      servers: { cloud: { url: http.url, remote: true, timeout: 5, max_result_bytes: 1024 } },
      offline: true,
    });
    await assert.rejects(offline.listTools("cloud", { context: context() }), /freehold runs offline/);
    assert.equal(http.requests, before);
    // The same key may use the local servers.
    const ok = await hub.callTool("local", "echo", { fruit: "apple" }, { context: context({ localOnly: true }) });
    assert.equal(ok.isError, false);
  });

  test("every call is audited (mcp.call) with server, tool, key, duration and status; content only for keys that store it", async () => {
    audit.length = 0;
    await hub.callTool("nearby", "lookup", { word: "plain" }, { context: context({ name: "plain" }) });
    await hub.callTool(
      "nearby",
      "lookup",
      { word: "kept" },
      { context: context({ name: "keeper", storeContent: true }) },
    );
    await hub
      .callTool("cloud", "lookup", { word: "x" }, { context: context({ name: "private", localOnly: true }) })
      .catch(() => {});
    assert.deepEqual(
      audit.map((event) => [event.action, event.detail?.key, event.detail?.status]),
      [
        ["mcp.call", "plain", "ok"],
        ["mcp.call", "keeper", "ok"],
        ["mcp.call", "private", "refused"],
      ],
    );
    const [plain, kept] = audit;
    assert.equal(plain!.detail!.server, "nearby");
    assert.equal(plain!.detail!.tool, "lookup");
    assert.equal(typeof plain!.detail!.durationMs, "number");
    assert.ok(
      !("arguments" in plain!.detail!) && !("result" in plain!.detail!),
      "no content for a key that keeps none",
    );
    assert.deepEqual(kept!.detail!.arguments, { word: "kept" });
    assert.equal(kept!.detail!.result, "definition of kept");
    assert.ok(metrics.some((m) => m.server === "nearby" && m.tool === "lookup" && m.status === "ok"));
    assert.ok(metrics.some((m) => m.server === "cloud" && m.status === "refused"));
  });

  test("calls are admitted against the key's limits: a call past the limit is refused before it runs", async () => {
    admitted.length = 0;
    const callsBefore = http.calls.length;
    rpmLeft = 1;
    const call = context({ name: "limited" });
    await hub.callTool("nearby", "lookup", { word: "one" }, { context: call });
    await assert.rejects(
      hub.callTool("nearby", "lookup", { word: "two" }, { context: call }),
      (error: Error & { status?: number }) => {
        assert.equal(error.status, 429);
        return true;
      },
    );
    rpmLeft = Number.POSITIVE_INFINITY;
    assert.equal(http.calls.length, callsBefore + 1, "the refused call never reached the server");
    assert.equal(admitted.length, 1);
    assert.equal(admitted[0]!.kind, "mcp-call");
    assert.equal(admitted[0]!.provider, "mcp:nearby");
    assert.match(admitted[0]!.requestId, new RegExp(`^${call.requestId}\\.mcp\\d+$`), "a ledger row of its own");
  });

  test("an unknown server is a 404 naming the known ones", async () => {
    await assert.rejects(
      hub.listTools("nope", { context: context() }),
      /No MCP server named "nope" is configured \(known: local, cloud, nearby\)/,
    );
  });
});
