import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse as parseYaml } from "yaml";
import type { ChatEvent } from "../src/core/chat.js";
import type { CallerKey } from "../src/core/context.js";
import { Freehold } from "../src/main.js";
import { parseProfile } from "../src/supply/index.js";
import { runCli } from "./helpers/cli.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fakeUpstream.js";
import { keyedPost } from "./helpers/keyedPost.js";
import { type HttpMcpServer, startHttpMcpServer, writeStdioMcpServer } from "./helpers/mcpServers.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";

/**
 * Issue 18's second part: servers attached by profiles, every API's clients of a route with `mcp:` over HTTP,
 * servers chosen by clients (the owner's switch), and prices per call. Real MCP servers written with the SDK; the
 * real tiny model where a call can be forced, a scripted model on loopback where an API cannot force one.
 */
describe("profiles attach servers; every API runs attached tools; client-chosen servers; prices", {
  skip: storiesModelMissing,
}, () => {
  const home = temporaryDirectory();
  const script = writeStdioMcpServer(home.path);
  const config = join(home.path, "freehold.yaml");
  let http: HttpMcpServer;
  let cloud: FakeUpstream;
  let freehold: Freehold;
  let app: ReturnType<Freehold["httpApp"]>;
  const secrets: Record<string, string> = {};
  const keys: Record<string, CallerKey> = {};
  const yaml = (servers: string[], routeMcp = true) =>
    [
      "mcp_max_steps: 2",
      "mcp_allow_client_servers: true",
      "providers:",
      `  cloud: {kind: openai, base_url: ${JSON.stringify(cloud.openaiBase)}, api_key: test}`,
      servers.length ? "mcp_servers:" : "mcp_servers: {}",
      ...servers,
      "routes:",
      "  scripted:",
      "    targets: [{provider: cloud, model: gpt-test}]",
      "    privacy: allow",
      ...(routeMcp ? ["    mcp: [local]"] : []),
      "  teller:",
      "    targets: [{provider: local, model: stories}]",
      ...(routeMcp ? ["    mcp: [local]"] : []),
      "",
    ].join("\n");
  const localServer = `  local: {command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(script)}], timeout: 10, price_per_call_usd: 0.02}`;
  before(async () => {
    http = await startHttpMcpServer();
    // A scripted model: it calls the client's own tool when asked to, else the attached `echo`; given a tool's
    // result it answers in text. So each API's server-side loop can be checked end to end.
    cloud = await startFakeUpstream((request) => {
      const messages = (request.body?.messages ?? []) as { role: string; content: unknown }[];
      if (messages.at(-1)?.role === "tool") return { kind: "reply", text: "all done" };
      if (JSON.stringify(messages).includes("use your tool"))
        return { kind: "reply", toolCall: { name: "client_tool", arguments: '{"q":"x"}' } };
      return { kind: "reply", toolCall: { name: "echo", arguments: '{"fruit":"pear"}' } };
    });
    writeFileSync(config, yaml([localServer]));
    freehold = await Freehold.open({ home: home.path, configPath: config });
    await freehold.store.import(storiesModelPath, "stories");
    for (const [name, settings] of [
      ["owner", { storeContent: true, admin: true }],
      ["private", { localOnly: true }],
      ["budgeted", { budgetUsd: 0.03 }],
    ] as const) {
      const created = await freehold.control.store.createKey(name, settings, { actor: "test" });
      secrets[name] = created.secret;
      keys[name] = {
        id: created.key.id,
        name,
        admin: false,
        models: null,
        localOnly: created.key.localOnly,
        storeContent: created.key.storeContent,
      };
    }
    app = freehold.httpApp();
  });
  after(async () => {
    await freehold?.close();
    await http?.close();
    await cloud?.close();
    home.dispose();
  });
  const post = keyedPost(() => app, secrets);
  const mcpCalls = async () =>
    (await freehold.control.audit.list({ limit: 1000 })).filter((entry) => entry.action === "mcp.call");
  const clientTool = {
    name: "client_tool",
    description: "The client's own tool",
    schema: { type: "object", properties: { q: { type: "string" } } },
  };
  const apis: { name: string; path: string; body: (text: string, stream: boolean) => unknown }[] = [
    {
      name: "Chat Completions",
      path: "/v1/chat/completions",
      body: (text, stream) => ({
        model: "scripted",
        stream,
        messages: [{ role: "user", content: text }],
        tools: [{ type: "function", function: { name: clientTool.name, parameters: clientTool.schema } }],
      }),
    },
    {
      name: "Anthropic Messages",
      path: "/v1/messages",
      body: (text, stream) => ({
        model: "scripted",
        max_tokens: 50,
        stream,
        messages: [{ role: "user", content: text }],
        tools: [{ name: clientTool.name, input_schema: clientTool.schema }],
      }),
    },
    {
      name: "Ollama /api/chat",
      path: "/api/chat",
      body: (text, stream) => ({
        model: "scripted",
        stream,
        messages: [{ role: "user", content: text }],
        tools: [{ type: "function", function: { name: clientTool.name, parameters: clientTool.schema } }],
      }),
    },
  ];
  test("Chat Completions, Anthropic Messages and Ollama clients, streamed and not: the route's MCP tool runs server-side; the client's own tool comes back to it", async (t) => {
    for (const api of apis)
      for (const stream of [false, true]) {
        await t.test(`${api.name}${stream ? ", streamed" : ""}`, async () => {
          const calls = (await mcpCalls()).length;
          const upstream = cloud.received.length;
          const answered = await post(api.path, api.body("Pick a fruit.", stream));
          const text = await answered.text();
          assert.equal(answered.status, 200, text);
          // The model's second turn got the real server's result as a tool message; the client saw only the answer.
          const turns = cloud.received.slice(upstream).filter((request) => request.method === "POST");
          assert.equal(turns.length, 2, "two model turns: the call, then the answer");
          const fed = (turns[1]!.body!.messages as { role: string; content: unknown }[]).at(-1)!;
          assert.equal(fed.role, "tool");
          assert.match(String(fed.content), /^echo: pear from \d+$/);
          assert.match(text, /all/);
          assert.doesNotMatch(
            text,
            /echo|client_tool/,
            "neither the MCP call nor a client tool call reaches the client",
          );
          const entries = await mcpCalls();
          assert.equal(entries.length, calls + 1);
          assert.equal((entries.at(-1)!.detail as { status: string }).status, "ok");
          // Asked to use its own tool, the model calls the client's tool: it goes back to the client, nothing runs here.
          const own = await post(api.path, api.body("Please use your tool.", stream));
          const ownText = await own.text();
          assert.equal(own.status, 200, ownText);
          assert.match(ownText, /client_tool/);
          assert.equal((await mcpCalls()).length, calls + 1, "no MCP call for the client's tool");
          // Both kinds were offered to the model: the client's and the attached server's.
          const offered = JSON.stringify(cloud.received.at(-1)!.body!.tools);
          assert.match(offered, /client_tool/);
          assert.match(offered, /"echo"/);
        });
      }
  });

  test("with the real tiny model: a client's own tool, forced by name on a route with mcp:, comes back to the client (Chat Completions, Anthropic; streamed and not)", async (t) => {
    const calls = (await mcpCalls()).length;
    const requests: [string, string, (stream: boolean) => unknown][] = [
      [
        "Chat Completions",
        "/v1/chat/completions",
        (stream) => ({
          model: "teller",
          stream,
          temperature: 0,
          max_tokens: 60,
          messages: [{ role: "user", content: "Once upon a time" }],
          tools: [{ type: "function", function: { name: clientTool.name, parameters: clientTool.schema } }],
          tool_choice: { type: "function", function: { name: clientTool.name } },
        }),
      ],
      [
        "Anthropic Messages",
        "/v1/messages",
        (stream) => ({
          model: "teller",
          stream,
          temperature: 0,
          max_tokens: 60,
          messages: [{ role: "user", content: "Once upon a time" }],
          tools: [{ name: clientTool.name, input_schema: clientTool.schema }],
          tool_choice: { type: "tool", name: clientTool.name },
        }),
      ],
    ];
    for (const [name, path, body] of requests)
      for (const stream of [false, true])
        await t.test(`${name}${stream ? ", streamed" : ""}`, async () => {
          const response = await post(path, body(stream));
          const text = await response.text();
          assert.equal(response.status, 200, text);
          assert.match(text, /client_tool/, "the client's tool call is in the answer");
          assert.match(text, stream ? /tool_calls|tool_use/ : /"tool_calls"|"tool_use"/);
          assert.equal((await mcpCalls()).length, calls, "nothing ran server-side");
        });
  });

  test("a profile attaches servers (mcp: in the profile): created over /api/create, run for requests to it", async () => {
    const created = await post("/api/create", { model: "helper", from: "stories", mcp: ["local"], stream: false });
    assert.equal(created.status, 200, await created.clone().text());
    const shown = await post("/api/show", { model: "helper" });
    assert.match(((await shown.json()) as { modelfile: string }).modelfile, /mcp:\n\s+- local/);
    const events: ChatEvent[] = [];
    for await (const event of freehold.gateway.generate(
      {
        kind: "chat",
        model: "helper",
        messages: [{ role: "user", content: "Pick a fruit." }],
        toolChoice: { name: "echo" },
        sampling: { temperature: 0 },
        limits: { maxTokens: 60 },
      },
      { requestId: "req_profile_mcp", api: "openai", route: "/v1/chat/completions", key: keys.owner! },
    ))
      events.push(event);
    assert.ok(!events.some((event) => event.type === "error" || event.type === "tool-call"), JSON.stringify(events));
    const entry = (await mcpCalls()).find((candidate) => candidate.requestId === "req_profile_mcp");
    assert.ok(entry, "the profile's server ran the forced call");
    assert.match(String((entry.detail as { result?: string }).result), /^echo: (apple|pear) from \d+$/);
  });

  test("a profile's mcp: must name a configured server: /api/create and freehold create refuse others", async () => {
    const refused = await post("/api/create", { model: "bad", from: "stories", mcp: ["nowhere"], stream: false });
    assert.equal(refused.status, 400);
    const error = ((await refused.json()) as { error: string }).error;
    assert.match(
      error,
      /mcp\[0\] names the MCP server "nowhere", which freehold\.yaml does not configure \(known: local\)/,
    );
    const withModelfile = await post("/api/create", {
      model: "bad",
      modelfile: "FROM stories\n",
      mcp: ["local"],
      stream: false,
    });
    assert.equal(withModelfile.status, 400, "mcp is never dropped silently");
    assert.match(((await withModelfile.json()) as { error: string }).error, /mcp goes with the fields form/);
    // Its shape is checked as the profile is read (both ways in: the file `freehold create` reads, /api/create's field).
    for (const [mcp, message] of [
      ["files", /mcp must be a list of MCP server names/],
      ["[a/b]", /mcp\[0\] must be an MCP server's name/],
      ["[local, local]", /mcp\[1\]: the server local is named twice/],
      [`[${Array.from({ length: 17 }, (_, i) => `s${i}`).join(", ")}]`, /mcp names at most 16 servers/],
    ] as const) {
      assert.throws(() => parseProfile(`from: stories\nmcp: ${mcp}\n`), message);
      const over = await post("/api/create", { model: "bad2", from: "stories", mcp: parseYaml(mcp), stream: false });
      assert.equal(over.status, 400, `${mcp}: ${await over.clone().text()}`);
    }
    const profile = join(home.path, "unknown.yaml");
    writeFileSync(profile, "from: stories\nmcp: [nowhere]\n");
    const cli = await runCli(["--config", config, "create", "bad3", "-f", profile], {
      env: { FREEHOLD_HOME: home.path },
    });
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /names the MCP server "nowhere", which freehold\.yaml does not configure/);
    await assert.rejects(freehold.store.show("bad3"), "nothing was created");
  });

  test("a configuration without a server a profile attaches is refused: on SIGHUP (the running one stays) and at start", async () => {
    writeFileSync(config, yaml([], false));
    await assert.rejects(freehold.reloadRouting(), (error: Error) => {
      assert.match(
        error.message,
        /profile helper(:latest)? \(in the model store\): mcp\[0\] names the MCP server "local", which freehold\.yaml does not configure/,
      );
      return true;
    });
    assert.deepEqual(await freehold.mcp.attached("scripted"), ["local"], "the running rules stay");
    await assert.rejects(
      Freehold.open({ home: home.path, configPath: config }),
      /profile helper(:latest)? \(in the model store\)/,
    );
    writeFileSync(config, yaml([localServer]));
    await freehold.reloadRouting();
  });

  test("price_per_call_usd: each call is charged to the key's ledger and counts against its budget", async () => {
    const run = async (requestId: string) => {
      const events: ChatEvent[] = [];
      for await (const event of freehold.gateway.generate(
        {
          kind: "chat",
          model: "helper",
          messages: [{ role: "user", content: "Pick a fruit." }],
          toolChoice: { name: "echo" },
          sampling: { temperature: 0 },
          limits: { maxTokens: 100 },
        },
        { requestId, api: "openai", route: "/v1/chat/completions", key: keys.budgeted! },
      ))
        events.push(event);
      return events;
    };
    const first = await run("req_priced_1");
    assert.ok(!first.some((event) => event.type === "error"), JSON.stringify(first));
    const rows = (await freehold.control.store.ledgerRows({ limit: 1000 })).filter(
      (row) => row.kind === "mcp-call" && row.keyName === "budgeted",
    );
    assert.equal(rows.length, 1, JSON.stringify(first));
    assert.equal(rows[0]!.costUsd, 0.02);
    assert.equal(rows[0]!.provider, "mcp:local");
    const usage = await freehold.control.admin.usage({ by: "provider", key: "budgeted" });
    const line = usage.find((candidate) => candidate.group.provider === "mcp:local");
    assert.ok(line && line.costUsd >= 0.02, JSON.stringify(usage));
    // $0.02 spent of $0.03: the next call would pass the budget, so it is refused before it runs (429).
    await assert.rejects(run("req_priced_2"), (error: Error & { code?: string; status?: number }) => {
      assert.equal(error.status, 429);
      assert.equal(error.code, "budget_exceeded");
      return true;
    });
    const after = (await freehold.control.store.ledgerRows({ limit: 1000 })).filter(
      (row) => row.kind === "mcp-call" && row.keyName === "budgeted" && row.status === 200,
    );
    assert.equal(after.length, 1, "the refused call ran nothing and cost nothing");
  });

  const webTool = (extra: Record<string, unknown> = {}) => ({
    type: "mcp",
    server_label: "web",
    server_url: http.url,
    allowed_tools: ["pick"],
    require_approval: "never",
    ...extra,
  });

  test("switched on: a client's server_url is called for that request (remote), with the client's headers", async () => {
    const before = http.calls.length;
    const response = await post("/v1/responses", {
      model: "stories",
      input: "Pick a colour.",
      tools: [webTool({ headers: { "X-Client": "mine" }, authorization: "client-token" })],
      tool_choice: { type: "mcp", server_label: "web", name: "pick" },
      max_output_tokens: 60,
      temperature: 0,
    });
    const body = (await response.json()) as { output: (Record<string, unknown> & { type: string })[] };
    assert.equal(response.status, 200, JSON.stringify(body));
    const call = body.output.find((item) => item.type === "mcp_call")!;
    assert.equal(call.server_label, "web");
    assert.match(String(call.output), /^picked (red|blue)$/);
    assert.equal(http.calls.length, before + 1);
    const sent = http.headers.at(-1)!;
    assert.equal(sent["x-client"], "mine");
    assert.equal(sent.authorization, "Bearer client-token");
    const entry = (await mcpCalls()).at(-1)!.detail as Record<string, unknown>;
    assert.equal(entry.client_chosen, true);
    assert.equal(entry.remote, true);
    assert.equal(entry.url, new URL(http.url).origin);
    assert.doesNotMatch(JSON.stringify(entry), /client-token/, "the client's credentials are not audited");
  });

  test("a client-chosen server that redirects is not followed, even within its origin: the listing fails, and the server hears nothing", async () => {
    const before = http.requests;
    const response = await post("/v1/responses", {
      model: "stories",
      input: "Once upon a time",
      tools: [webTool({ server_url: `${new URL(http.url).origin}/moved` })],
      max_output_tokens: 5,
      temperature: 0,
    });
    const body = (await response.json()) as { output: (Record<string, unknown> & { type: string })[] };
    assert.equal(response.status, 200, JSON.stringify(body));
    const list = body.output.find((item) => item.type === "mcp_list_tools")!;
    assert.equal(list.server_label, "web");
    assert.match(String(list.error), /MCP server web could not be started or reached/);
    assert.equal(http.requests, before, "the redirect's target was never contacted");
  });

  test("switched on, a local-only key is still refused a client's server (403), and it hears nothing", async () => {
    const before = http.requests;
    const response = await post(
      "/v1/responses",
      { model: "stories", input: "Pick a colour.", tools: [webTool()], max_output_tokens: 10 },
      "private",
    );
    assert.equal(response.status, 403);
    const error = ((await response.json()) as { error: { code: string; message: string } }).error;
    assert.equal(error.code, "mcp_remote_refused");
    assert.match(error.message, /API key private is local-only/);
    assert.equal(http.requests, before);
  });

  const badClientServers: [string, Record<string, unknown>, RegExp, string][] = [
    ["ftp", { server_url: "ftp://example.com/mcp" }, /must be https:\/\//, "tools[0].server_url"],
    [
      "http off this machine",
      { server_url: "http://example.com/mcp" },
      /plain http:\/\/ only to this machine/,
      "tools[0].server_url",
    ],
    ["not a URL", { server_url: "not a url" }, /not a URL/, "tools[0].server_url"],
    [
      "credentials in the URL",
      { server_url: "https://u:p@example.com/mcp" },
      /carries credentials/,
      "tools[0].server_url",
    ],
    [
      "a configured server's label",
      { server_label: "local" },
      /name of a server the owner configured/,
      "tools[0].server_label",
    ],
    ["a reserved header", { headers: { Host: "evil" } }, /"Host" is set by freehold's MCP client/, "tools[0].headers"],
    ["a bad header name", { headers: { "a b": "c" } }, /is not a valid header name/, "tools[0].headers"],
    ["a header value with a line break", { headers: { "X-A": "b\r\nX-B: c" } }, /one line/, "tools[0].headers"],
    [
      "the token twice",
      { headers: { authorization: "Bearer a" }, authorization: "b" },
      /give the token once/,
      "tools[0].authorization",
    ],
    ["a token with spaces", { authorization: "a b" }, /one word/, "tools[0].authorization"],
  ];
  test("a client-chosen server is refused with a 400 naming the field (scheme, host, credentials, label, headers, token), before anything is sent", async (t) => {
    for (const [name, extra, message, param] of badClientServers)
      await t.test(name, async () => {
        const before = http.requests;
        const response = await post("/v1/responses", { model: "stories", input: "hi", tools: [webTool(extra)] });
        assert.equal(response.status, 400);
        const error = ((await response.json()) as { error: { message: string; param: string } }).error;
        assert.match(error.message, message);
        assert.equal(error.param, param);
        assert.equal(http.requests, before);
      });
  });
});
