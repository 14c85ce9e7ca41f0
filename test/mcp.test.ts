import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseFileConfig } from "../src/config/fileConfig.js";
import type { ChatEvent } from "../src/core/chat.js";
import type { CallerKey, RequestContext } from "../src/core/context.js";
import { RateLimitError } from "../src/core/errors.js";
import { Freehold } from "../src/main.js";
import { McpHub } from "../src/mcp/hub.js";
import { runCli } from "./helpers/cli.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fakeUpstream.js";
import { keyedPost } from "./helpers/keyedPost.js";
import {
  type HttpMcpServer,
  startHttpMcpServer,
  writeHttpMcpServerScript,
  writeStdioMcpServer,
} from "./helpers/mcpServers.js";
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
      audit: {
        record: (event) => {
          audit.push(event);
        },
      },
      metrics: { observeMcpCall: (observation) => metrics.push(observation) },
      meter: {
        async admit(work, callContext, target) {
          if (rpmLeft-- <= 0) {
            throw new RateLimitError("Rate limit reached for key someone: 1 requests per minute", "rpm_exceeded", 60);
          }
          admitted.push({
            kind: work.kind,
            provider: target.provider,
            model: target.model,
            requestId: callContext.requestId,
          });
          return { maxTokens: 0, settle: async () => {} };
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
      "contact",
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

/** Starts the session-keeping HTTP MCP server in its own process; resolves with the process and its port. */
async function startHttpMcpProcess(script: string, port = 0): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [script, String(port)], { stdio: ["ignore", "pipe", "inherit"] });
  const listening = await new Promise<number>((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString("utf8");
      const match = /listening (\d+)/.exec(out);
      if (match) resolve(Number(match[1]));
    });
    child.once("exit", (code) => reject(new Error(`the HTTP MCP server exited (${code}) before listening`)));
  });
  return { child, port: listening };
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

test("a Streamable HTTP server that dies and comes back on the same port is reconnected (a new session)", async (t) => {
  const files = temporaryDirectory();
  const script = writeHttpMcpServerScript(files.path);
  let server = await startHttpMcpProcess(script);
  const hub = new McpHub({
    servers: { web: { url: `http://127.0.0.1:${server.port}/mcp`, timeout: 5, max_result_bytes: 65_536 } },
  });
  t.after(async () => {
    await hub.close();
    await kill(server.child);
    files.dispose();
  });
  const whoami = async () => Number((await hub.callTool("web", "whoami", {}, { context: context() })).output);
  const connection = hub.connection("web");
  assert.equal(await whoami(), server.child.pid);
  assert.equal(connection.starts, 1);
  // Killed: a call while it is down fails and says why; nothing hangs.
  await kill(server.child);
  await assert.rejects(whoami(), (error: Error & { code?: string }) => {
    assert.equal(error.code, "mcp_server_error");
    assert.match(error.message, /MCP server web failed while calling whoami/);
    return true;
  });
  // Started again on the same port: it knows none of the old sessions; the next call opens a new one and runs.
  server = await startHttpMcpProcess(script, server.port);
  assert.equal(await whoami(), server.child.pid);
  assert.equal(connection.starts, 2);
  assert.ok((await hub.listTools("web", { context: context() })).some((tool) => tool.name === "lookup"));
  // Killed and started again between two calls (no failed call in between): the next call still runs.
  await kill(server.child);
  server = await startHttpMcpProcess(script, server.port);
  assert.equal(await whoami(), server.child.pid);
  assert.equal(connection.starts, 3);
});

describe("MCP tools through the APIs, with the real tiny model", { skip: storiesModelMissing }, () => {
  const home = temporaryDirectory();
  const script = writeStdioMcpServer(home.path);
  let http: HttpMcpServer;
  let freehold: Freehold;
  let app: ReturnType<Freehold["httpApp"]>;
  const secrets: Record<string, string> = {};
  before(async () => {
    http = await startHttpMcpServer();
    const config = join(home.path, "freehold.yaml");
    writeFileSync(
      config,
      [
        "mcp_max_steps: 2",
        "mcp_servers:",
        `  local: {command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(script)}], timeout: 10}`,
        `  cloud: {url: ${JSON.stringify(http.url)}, remote: true}`,
        "routes:",
        "  storyteller:",
        "    targets: [{provider: local, model: stories}]",
        "    mcp: [local]",
        "",
      ].join("\n"),
    );
    freehold = await Freehold.open({ home: home.path, configPath: config });
    await freehold.store.import(storiesModelPath, "stories");
    secrets.owner = (await freehold.control.store.createKey("owner", { storeContent: true }, { actor: "test" })).secret;
    secrets.private = (
      await freehold.control.store.createKey("private", { localOnly: true }, { actor: "test" })
    ).secret;
    app = freehold.httpApp();
  });
  after(async () => {
    await freehold?.close();
    await http?.close();
    home.dispose();
  });

  const post = keyedPost(() => app, secrets);
  const echoTool = (extra: Record<string, unknown> = {}) => ({
    type: "mcp",
    server_label: "local",
    allowed_tools: ["echo"],
    require_approval: "never",
    ...extra,
  });
  const forced = { type: "mcp", server_label: "local", name: "echo" };
  type Item = Record<string, unknown> & { type: string };

  test("the model calls the server's tool (forced by tool_choice); the mcp_call item carries the server's output", async () => {
    const response = await post("/v1/responses", {
      model: "stories",
      input: "Pick a fruit.",
      tools: [echoTool()],
      tool_choice: forced,
      max_output_tokens: 100,
      temperature: 0,
    });
    assert.equal(response.status, 200, await response.clone().text());
    const body = (await response.json()) as {
      output: Item[];
      status: string;
      tools: unknown[];
      usage: { output_tokens: number };
    };
    assert.ok(body.usage.output_tokens <= 100, "max_output_tokens bounds every turn together");
    const [list, call] = body.output;
    assert.equal(list!.type, "mcp_list_tools");
    assert.equal(list!.server_label, "local");
    assert.deepEqual(
      (list!.tools as { name: string }[]).map((tool) => tool.name),
      ["echo"],
      "allowed_tools filters the list",
    );
    assert.equal(call!.type, "mcp_call");
    assert.equal(call!.name, "echo");
    assert.equal(call!.status, "completed");
    assert.equal(call!.error, null);
    const { fruit } = JSON.parse(call!.arguments as string) as { fruit: string };
    assert.ok(["apple", "pear"].includes(fruit));
    assert.match(call!.output as string, new RegExp(`^echo: ${fruit} from \\d+$`));
    // The last turn may not call tools: it answers in text, within what is left of max_output_tokens.
    assert.equal(body.output.at(-1)!.type, "message");
    assert.ok(["completed", "incomplete"].includes(body.status));
    assert.deepEqual(body.tools[0], {
      type: "mcp",
      server_label: "local",
      allowed_tools: ["echo"],
      headers: null,
      require_approval: "never",
      server_description: null,
      server_url: null,
    });
  });

  test("streamed: the mcp items come with OpenAI's event names, in order", async () => {
    const response = await post("/v1/responses", {
      model: "stories",
      input: "Pick a fruit.",
      tools: [echoTool()],
      tool_choice: forced,
      max_output_tokens: 100,
      temperature: 0,
      stream: true,
    });
    assert.equal(response.status, 200);
    const names = (await response.text())
      .split("\n\n")
      .filter((frame) => frame.trim())
      .map((frame) => /^event: (\S+)/.exec(frame)![1]!);
    const mcpNames = names.filter((name) => name.includes("mcp"));
    assert.deepEqual(mcpNames, [
      "response.mcp_list_tools.in_progress",
      "response.mcp_list_tools.completed",
      "response.mcp_call.in_progress",
      "response.mcp_call_arguments.delta",
      "response.mcp_call_arguments.done",
      "response.mcp_call.completed",
    ]);
    assert.equal(names[0], "response.created");
    assert.match(names.at(-1)!, /^response\.(completed|incomplete)$/);
  });

  test("approval round trip: the answer stops at mcp_approval_request, and the call runs once the client approves", async () => {
    const first = await post("/v1/responses", {
      model: "stories",
      input: "Pick a fruit.",
      tools: [echoTool({ require_approval: "always" })],
      tool_choice: forced,
      max_output_tokens: 100,
      temperature: 0,
    });
    assert.equal(first.status, 200, await first.clone().text());
    const output = ((await first.json()) as { output: Item[] }).output;
    assert.deepEqual(
      output.map((item) => item.type),
      ["mcp_list_tools", "mcp_approval_request"],
    );
    const request = output[1]!;
    assert.equal(request.name, "echo");
    assert.equal(request.server_label, "local");
    const { fruit } = JSON.parse(request.arguments as string) as { fruit: string };
    const second = await post("/v1/responses", {
      model: "stories",
      input: [
        { role: "user", content: "Pick a fruit." },
        ...output,
        { type: "mcp_approval_response", approval_request_id: request.id, approve: true },
      ],
      tools: [echoTool({ require_approval: "always" })],
      max_output_tokens: 8,
      temperature: 0,
    });
    assert.equal(second.status, 200, await second.clone().text());
    const items = ((await second.json()) as { output: Item[] }).output;
    const call = items.find((item) => item.type === "mcp_call")!;
    assert.equal(call.approval_request_id, request.id);
    assert.equal(call.arguments, request.arguments);
    assert.match(call.output as string, new RegExp(`^echo: ${fruit} from \\d+$`));
    // Denied: nothing runs.
    const denied = await post("/v1/responses", {
      model: "stories",
      input: [
        { role: "user", content: "Pick a fruit." },
        ...output,
        { type: "mcp_approval_response", approval_request_id: request.id, approve: false },
      ],
      tools: [echoTool({ require_approval: "always" })],
      tool_choice: "none",
      max_output_tokens: 4,
      temperature: 0,
    });
    assert.equal(denied.status, 200);
    assert.ok(!((await denied.json()) as { output: Item[] }).output.some((item) => item.type === "mcp_call"));
  });

  test("a local-only key is refused a remote MCP server (403), and the server hears nothing", async () => {
    const before = http.requests;
    const response = await post(
      "/v1/responses",
      { model: "stories", input: "hi", tools: [{ type: "mcp", server_label: "cloud", require_approval: "never" }] },
      "private",
    );
    assert.equal(response.status, 403);
    const error = ((await response.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, "mcp_remote_refused");
    assert.match(error.message, /API key private is local-only/);
    assert.equal(http.requests, before);
  });

  const badTools: [string, unknown, RegExp, string][] = [
    ["unknown server", { type: "mcp", server_label: "nope" }, /no MCP server named "nope"/, "tools[0].server_label"],
    [
      "server_url",
      { type: "mcp", server_label: "x", server_url: "https://evil.example/mcp" },
      /calls only the MCP servers its owner configured in freehold\.yaml \(the owner may allow servers chosen by clients with mcp_allow_client_servers: true\)/,
      "tools[0].server_url",
    ],
    [
      "client headers",
      { type: "mcp", server_label: "local", headers: { Authorization: "Bearer x" } },
      /credentials for the owner's MCP servers are the owner's/,
      "tools[0].headers",
    ],
    [
      "authorization",
      { type: "mcp", server_label: "local", authorization: "x" },
      /leave out authorization/,
      "tools[0].authorization",
    ],
    [
      "connector",
      { type: "mcp", server_label: "local", connector_id: "connector_gmail" },
      /connectors/,
      "tools[0].connector_id",
    ],
    ["bad label", { type: "mcp", server_label: "a/b" }, /configured MCP server's name/, "tools[0].server_label"],
    [
      "bad approval",
      { type: "mcp", server_label: "local", require_approval: "sometimes" },
      /require_approval/,
      "tools[0].require_approval",
    ],
  ];
  for (const [name, tool, message, param] of badTools)
    test(`refused with a 400 naming the field: ${name}`, async () => {
      const response = await post("/v1/responses", { model: "stories", input: "hi", tools: [tool] });
      assert.equal(response.status, 400);
      const error = ((await response.json()) as { error: { message: string; param: string } }).error;
      assert.match(error.message, message);
      assert.equal(error.param, param);
    });

  test("refused: the same server twice, an approval with no request in input, tool_choice naming a tool no server offers", async () => {
    const twice = await post("/v1/responses", {
      model: "stories",
      input: "hi",
      tools: [echoTool(), echoTool()],
    });
    assert.equal(twice.status, 400);
    assert.match(await twice.text(), /named twice/);
    const orphan = await post("/v1/responses", {
      model: "stories",
      input: [{ type: "mcp_approval_response", approval_request_id: "mcpr_x", approve: true }],
      tools: [echoTool()],
    });
    assert.equal(orphan.status, 400);
    assert.match(await orphan.text(), /no mcp_approval_request item with the id \\"mcpr_x\\"/);
    const missing = await post("/v1/responses", {
      model: "stories",
      input: "hi",
      tools: [echoTool()],
      tool_choice: { type: "mcp", server_label: "local", name: "whoami" },
    });
    assert.equal(missing.status, 400);
    assert.match(await missing.text(), /tool_choice names the tool whoami, which no tool of this request offers/);
  });

  test("a route with mcp: attached runs the server's tools for every API; the client sees only the answer", async () => {
    const audited = (await freehold.control.audit.list({ limit: 1000 })).filter(
      (entry) => entry.action === "mcp.call",
    ).length;
    const events: ChatEvent[] = [];
    for await (const event of freehold.gateway.generate(
      {
        kind: "chat",
        model: "storyteller",
        messages: [{ role: "user", content: "Pick a fruit." }],
        toolChoice: { name: "echo" },
        sampling: { temperature: 0 },
        limits: { maxTokens: 100 },
      },
      { requestId: "req_route_mcp", api: "openai", route: "/v1/chat/completions" },
    ))
      events.push(event);
    assert.ok(!events.some((event) => event.type === "tool-call"), "the server-side call is not the client's");
    assert.equal(events.at(-1)?.type, "finish");
    const entries = (await freehold.control.audit.list({ limit: 1000 })).filter((entry) => entry.action === "mcp.call");
    assert.equal(entries.length, audited + 1);
    assert.equal(entries.at(-1)!.requestId, "req_route_mcp");
    // Over HTTP the route answers Chat Completions as before (the model may or may not call the tool).
    const chat = await post("/v1/chat/completions", {
      model: "storyteller",
      messages: [{ role: "user", content: "Once upon a time" }],
      max_tokens: 8,
    });
    assert.equal(chat.status, 200, await chat.clone().text());
    const message = ((await chat.json()) as { choices: { message: { tool_calls?: unknown } }[] }).choices[0]!.message;
    assert.equal(message.tool_calls, undefined);
  });

  test("the calls are in the audit trail with the key, in /metrics, and in the ledger as mcp-call rows", async () => {
    const entries = (await freehold.control.audit.list({ limit: 1000 })).filter((entry) => entry.action === "mcp.call");
    const owner = entries.find((entry) => (entry.detail as { key?: string } | undefined)?.key === "owner");
    assert.ok(owner, JSON.stringify(entries));
    const detail = owner.detail as Record<string, unknown>;
    assert.equal(detail.server, "local");
    assert.equal(detail.tool, "echo");
    assert.equal(detail.status, "ok");
    assert.ok("arguments" in detail, "the owner key stores content, so the arguments are kept");
    const metrics = await freehold.control.metrics.text();
    assert.match(metrics, /freehold_mcp_calls_total\{server="local",tool="echo",status="ok"\} [1-9]/);
    const rows = (await freehold.control.store.ledgerRows({ limit: 1000 })).filter((row) => row.kind === "mcp-call");
    assert.ok(rows.some((row) => row.provider === "mcp:local" && row.model === "echo" && row.keyName === "owner"));
  });
});

test("config check summarises MCP servers; doctor --egress lists the remote ones and where their calls go", async (t) => {
  const directory = temporaryDirectory("freehold-mcp-config-");
  t.after(directory.dispose);
  const path = join(directory.path, "freehold.yaml");
  writeFileSync(
    path,
    [
      "mcp_servers:",
      "  files: {command: [node, files.js]}",
      "  search: {url: 'https://search.example.com/mcp', headers: {Authorization: 'Bearer s3cret'}}",
      "  near: {url: 'http://127.0.0.1:9000/mcp'}",
      "mcp_allow_client_servers: true",
      "routes:",
      "  helper:",
      "    targets: [{provider: local, model: m}]",
      "    mcp: [files]",
      "",
    ].join("\n"),
  );
  const env = { FREEHOLD_HOME: directory.path };
  const check = await runCli(["--config", path, "config", "check"], { env });
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /mcp server files: stdio: node files\.js \(local; routes helper\)/);
  assert.match(check.stdout, /mcp server search: https:\/\/search\.example\.com \(remote\)/);
  assert.match(check.stdout, /mcp server near: http:\/\/127\.0\.0\.1:9000 \(local\)/);
  const egress = await runCli(["--config", path, "doctor", "--egress"], { env });
  assert.equal(egress.code, 0, egress.stderr);
  assert.match(
    egress.stdout,
    /\n {2}https:\/\/search\.example\.com {2}mcp server search; tool calls send arguments there; attached to routes \(none; Responses requests may name it\)/,
  );
  // The owner's switch for client-chosen servers is a destination of its own: any https URL a client names.
  assert.match(egress.stdout, /\(any https:\/\/ URL a client names\) {2}client-chosen servers allowed/);
  assert.match(check.stdout, /mcp_allow_client_servers: Responses requests may name MCP servers by URL/);
  // Local servers (stdio, loopback) are not destinations off the machine.
  assert.doesNotMatch(egress.stdout, /node files\.js|127\.0\.0\.1:9000/);
  assert.doesNotMatch(egress.stdout + check.stdout, /s3cret/, "headers are never printed");
  const offline = await runCli(["--config", path, "doctor", "--egress", "--offline"], { env });
  assert.match(offline.stdout, /outbound: nothing\. Offline/);
  assert.match(offline.stdout, /configured but forbidden: https:\/\/search\.example\.com \(mcp server search/);
  writeFileSync(path, "mcp_servers:\n  broken: {command: [a], headers: {A: b}}\n");
  const bad = await runCli(["--config", path, "config", "check"], { env });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /freehold\.yaml:2: mcp_servers\.broken\.headers: headers are for HTTP servers/);
});

describe("tool results are content: the privacy policy sees them before a remote model does", {
  skip: storiesModelMissing,
}, () => {
  const home = temporaryDirectory();
  const script = writeStdioMcpServer(home.path);
  let cloud: FakeUpstream;
  let freehold: Freehold;
  before(async () => {
    // The remote model asks for the contact tool; the tool's answer carries an e-mail address.
    cloud = await startFakeUpstream((_request, index) =>
      index === 0 ? { kind: "reply", toolCall: { name: "contact", arguments: "{}" } } : { kind: "reply", text: "sent" },
    );
    const config = join(home.path, "freehold.yaml");
    writeFileSync(
      config,
      [
        "providers:",
        `  cloud: {kind: openai, base_url: ${JSON.stringify(cloud.openaiBase)}, api_key: test}`,
        "mcp_servers:",
        `  people: {command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(script)}]}`,
        "routes:",
        "  assistant:",
        "    targets: [{provider: cloud, model: gpt-test}, {provider: local, model: stories}]",
        "    privacy: local-only",
        "    mcp: [people]",
        "",
      ].join("\n"),
    );
    freehold = await Freehold.open({ home: home.path, configPath: config });
    await freehold.store.import(storiesModelPath, "stories");
  });
  after(async () => {
    await freehold?.close();
    await cloud?.close();
    home.dispose();
  });

  test("a tool result with personal data is kept from the remote model (local-only): the next turn runs locally", async () => {
    const events: ChatEvent[] = [];
    for await (const event of freehold.gateway.generate(
      {
        kind: "chat",
        model: "assistant",
        messages: [{ role: "user", content: "Whom should I write to?" }],
        sampling: { temperature: 0 },
        limits: { maxTokens: 12 },
      },
      { requestId: "req_privacy_mcp", api: "openai", route: "/v1/chat/completions" },
    ))
      events.push(event);
    const completions = cloud.received.filter((request) => request.method === "POST");
    assert.equal(completions.length, 1, "only the first turn (no personal data yet) went to the remote model");
    assert.doesNotMatch(JSON.stringify(cloud.received), /alice\.smith@example\.com/);
    assert.equal(events.at(-1)?.type, "finish");
    assert.ok(!events.some((event) => event.type === "error"), JSON.stringify(events));
    const audited = (await freehold.control.audit.list({ limit: 100 })).filter((entry) => entry.action === "mcp.call");
    assert.equal(audited.length, 1);
    assert.equal((audited[0]!.detail as { tool: string }).tool, "contact");
  });
});

test("SIGHUP's new routes and key rules apply to MCP at once; the servers stay as started", async () => {
  const parse = (text: string) => parseFileConfig(text, "freehold.yaml", {});
  const servers = "mcp_servers:\n  cloud: {url: 'https://mcp.example.com/mcp'}\n";
  const before = parse(`${servers}routes:\n  r:\n    targets: [{provider: local, model: m}]\n    mcp: [cloud]\n`);
  const hub = McpHub.fromFile(before, false, {});
  assert.deepEqual(await hub.attached("r"), ["cloud"]);
  hub.reloadRules(
    parse(`${servers}routes:\n  r:\n    targets: [{provider: local, model: m}]\nkeys:\n  k: {local_only: true}\n`),
    false,
  );
  assert.deepEqual(await hub.attached("r"), []);
  await assert.rejects(hub.listTools("cloud", { context: context({ name: "k" }) }), /API key k is local-only/);
});
