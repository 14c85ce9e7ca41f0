import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { type FakeUpstream, startFakeUpstream } from "./helpers/fakeUpstream.js";
import { projectRoot, storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";
import { postJson, readSse, type ServerProcess, startServerProcess } from "./helpers/server.js";

/**
 * freehold in front of local and paid models, end to end: real `freehold serve` processes with a freehold.yaml, fake
 * clouds on loopback that speak OpenAI and Anthropic, and a second freehold process as a provider.
 */

const cloudText = "Hello from the cloud.";

interface AnthropicFrame {
  type: string;
  content_block?: { type: string; name?: string };
  delta?: { type?: string; partial_json?: string; stop_reason?: string };
}

function text(body: unknown): string {
  return (body as { choices: { message: { content: string } }[] }).choices[0]!.message.content;
}

describe("routing across machines and providers", { skip: storiesModelMissing }, () => {
  const directory = temporaryDirectory("freehold-routing-");
  let cloud: FakeUpstream;
  let claude: FakeUpstream;
  let openai: FakeUpstream;
  let decoy: FakeUpstream;
  let hybrid: ServerProcess;
  let front: ServerProcess;
  const frontConfig = join(directory.path, "freehold.yaml");
  const frontYaml = () => `
providers:
  node-a: { kind: openai, base_url: "${hybrid.url}/v1" }
  claude: { kind: anthropic, base_url: "${claude.url}", api_key: ant-configured-key }
  openai: { kind: openai, base_url: "${openai.openaiBase}", api_key: sk-configured-key-0000000000 }
routes:
  via-node: { privacy: allow, targets: [{ provider: node-a, model: stories }] }
  claude-route: { privacy: allow, targets: [{ provider: claude, model: claude-fake }] }
  openai-route: { privacy: allow, targets: [{ provider: openai, model: gpt-fake }] }
`;

  before(async () => {
    [cloud, claude, openai, decoy] = await Promise.all([
      startFakeUpstream(),
      startFakeUpstream(() => ({ kind: "reply", toolCall: { name: "get_weather", arguments: '{"city":"Oslo"}' } })),
      startFakeUpstream(() => ({ kind: "reply", toolCall: { name: "get_weather", arguments: '{"city":"Lima"}' } })),
      startFakeUpstream(),
    ]);
    hybrid = await startServerProcess({
      models: { stories: storiesModelPath },
      args: ["--config", join(projectRoot, "examples/hybrid.yaml")],
      env: {
        CLOUD_BASE_URL: cloud.openaiBase,
        CLOUD_API_KEY: "sk-hybrid-key-000000000000",
        CLOUD_MODEL: "gpt-fake",
        LOCAL_MODEL: "stories",
      },
    });
    writeFileSync(frontConfig, frontYaml());
    front = await startServerProcess({ args: ["--config", frontConfig, "--no-demo"] });
  });

  after(async () => {
    await Promise.all([hybrid?.dispose(), front?.dispose()]);
    await Promise.all([cloud, claude, openai, decoy].map((fake) => fake?.close()));
    directory.dispose();
  });

  test("examples/hybrid.yaml: personal data stays local, the rest goes to cloud, cloud down falls back to local", async () => {
    const ask = (content: string) =>
      postJson(`${hybrid.url}/v1/chat/completions`, {
        model: "smart",
        messages: [{ role: "user", content }],
        max_tokens: 8,
        temperature: 0,
      });
    const plain = await ask("Write one line about the sea.");
    assert.equal(plain.status, 200);
    assert.equal(text(await plain.json()), cloudText);
    assert.equal(cloud.received.length, 1);
    assert.equal(cloud.received[0]!.headers.authorization, "Bearer sk-hybrid-key-000000000000");
    assert.equal(cloud.received[0]!.body?.model, "gpt-fake");

    const personal = await ask("Once upon a time, mail anna@example.com");
    assert.equal(personal.status, 200);
    const answer = text(await personal.json());
    assert.notEqual(answer, cloudText);
    assert.ok(answer.length > 0);
    assert.equal(cloud.received.length, 1, "the request with an e-mail address never reached the cloud");
    const requestId = personal.headers.get("x-request-id")!;
    const explained = await runCli(["explain", requestId, "--url", hybrid.url]);
    assert.equal(explained.code, 0, explained.stderr);
    assert.match(explained.stdout, /served by local\/stories/);
    assert.match(explained.stdout, /email ×1/);
    assert.match(
      explained.stdout,
      /excluded cloud\/gpt-fake: the request carries email: 1 and the policy is local-only/,
    );

    cloud.behave = () => ({ kind: "error", status: 503 });
    const down = await ask("Write one line about the sea.");
    assert.equal(down.status, 200);
    assert.notEqual(text(await down.json()), cloudText);
    assert.equal(cloud.received.length, 3, "cloud was tried (and retried once) before falling back");
    cloud.behave = () => ({ kind: "reply" });
  });

  test("a second freehold process serves as a provider", async () => {
    const response = await postJson(`${front.url}/v1/chat/completions`, {
      model: "via-node",
      messages: [{ role: "user", content: "Once upon a time" }],
      max_tokens: 6,
      temperature: 0,
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { usage: { completion_tokens: number }; model: string };
    assert.ok(text(body).length > 0);
    assert.ok(body.usage.completion_tokens > 0 && body.usage.completion_tokens <= 6);
    assert.equal(body.model, "via-node");
  });

  test("logprobs pass through an OpenAI-compatible provider (streamed and not); an Anthropic one refuses them", async () => {
    const ask = (model: string, stream: boolean) =>
      postJson(`${front.url}/v1/chat/completions`, {
        model,
        messages: [{ role: "user", content: "Once upon a time" }],
        max_tokens: 6,
        temperature: 0,
        logprobs: true,
        top_logprobs: 2,
        stream,
      });
    const whole = (await (await ask("via-node", false)).json()) as {
      choices: { message: { content: string }; logprobs: { content: { token: string; top_logprobs: unknown[] }[] } }[];
    };
    const entries = whole.choices[0]!.logprobs.content;
    assert.ok(entries.length > 0);
    assert.equal(entries.map((entry) => entry.token).join(""), whole.choices[0]!.message.content);
    for (const entry of entries) assert.equal(entry.top_logprobs.length, 2);
    const frames = (await readSse(await ask("via-node", true))).filter((frame) => frame !== "[DONE]");
    const streamed = frames.flatMap(
      (frame) => (JSON.parse(frame).choices[0]?.logprobs?.content ?? []) as { token: string }[],
    );
    assert.deepEqual(
      streamed.map((entry) => entry.token),
      entries.map((entry) => entry.token),
    );
    const refused = await ask("claude-route", false);
    assert.equal(refused.status, 400);
    assert.match(((await refused.json()) as { error: { message: string } }).error.message, /log probabilities/);
  });

  test("OpenAI client → Anthropic upstream, streamed, with tools", async () => {
    const response = await postJson(`${front.url}/v1/chat/completions`, {
      model: "claude-route",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "Weather in Oslo?" }],
      tools: [
        {
          type: "function",
          function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
        },
      ],
      tool_choice: { type: "function", function: { name: "get_weather" } },
    });
    assert.equal(response.status, 200);
    const chunks = (await readSse(response)).filter((data) => data !== "[DONE]").map((data) => JSON.parse(data));
    const calls = chunks.flatMap((chunk) => chunk.choices[0]?.delta?.tool_calls ?? []);
    assert.equal(calls[0].function.name, "get_weather");
    assert.equal(
      calls.map((call: { function: { arguments: string } }) => call.function.arguments).join(""),
      '{"city":"Oslo"}',
    );
    assert.equal(chunks.find((chunk) => chunk.choices[0]?.finish_reason)?.choices[0].finish_reason, "tool_calls");
    assert.equal(chunks.at(-1).usage.prompt_tokens, 9);
    const sent = claude.received.at(-1)!;
    assert.equal(sent.path, "/v1/messages");
    assert.deepEqual(sent.body?.tool_choice, { type: "tool", name: "get_weather" });
    assert.equal(sent.headers["x-api-key"], "ant-configured-key");
  });

  test("Anthropic client → OpenAI upstream, streamed, with tools", async () => {
    const response = await postJson(`${front.url}/v1/messages`, {
      model: "openai-route",
      max_tokens: 100,
      stream: true,
      messages: [{ role: "user", content: "Weather in Lima?" }],
      tools: [{ name: "get_weather", input_schema: { type: "object", properties: { city: { type: "string" } } } }],
    });
    assert.equal(response.status, 200, await response.clone().text());
    const frames = (await response.text()).split("\n\n").filter((frame) => frame.trim());
    const events = frames.map((frame) => JSON.parse(frame.split("\ndata: ")[1]!) as AnthropicFrame);
    const start = events.find(
      (event) => event.type === "content_block_start" && event.content_block?.type === "tool_use",
    );
    assert.equal(start?.content_block?.name, "get_weather");
    const json = events
      .filter((event) => event.type === "content_block_delta" && event.delta?.type === "input_json_delta")
      .map((event) => event.delta?.partial_json)
      .join("");
    assert.deepEqual(JSON.parse(json), { city: "Lima" });
    assert.equal(events.find((event) => event.type === "message_delta")?.delta?.stop_reason, "tool_use");
    const sent = openai.received.at(-1)!;
    assert.equal(sent.path, "/v1/chat/completions");
    assert.equal((sent.body!.tools as { function: { name: string } }[])[0]!.function.name, "get_weather");
  });

  test("client-supplied base URLs and upstream keys are ignored", async () => {
    const before = openai.received.length;
    const response = await fetch(`${front.url}/v1/chat/completions`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-api-key": "sk-client-supplied-key",
        "x-portkey-custom-host": decoy.openaiBase,
        "x-base-url": decoy.openaiBase,
      },
      body: JSON.stringify({
        model: "openai-route",
        base_url: decoy.openaiBase,
        api_base: decoy.openaiBase,
        api_key: "sk-client-supplied-key",
        messages: [{ role: "user", content: "hi" }],
      }),
    });
    assert.equal(response.status, 200);
    await response.json();
    assert.deepEqual(decoy.received, []);
    assert.equal(openai.received.length, before + 1);
    const sent = openai.received.at(-1)!;
    assert.equal(sent.headers.authorization, "Bearer sk-configured-key-0000000000");
    assert.ok(!JSON.stringify(sent).includes("sk-client-supplied-key"));
  });

  test("SIGHUP reloads freehold.yaml without a restart; a broken file keeps the running one", async () => {
    writeFileSync(
      frontConfig,
      `${frontYaml()}  late: { privacy: allow, targets: [{ provider: openai, model: gpt-late }] }\n`,
    );
    front.child.kill("SIGHUP");
    const deadline = Date.now() + 10_000;
    while (!front.output().includes("SIGHUP: reloaded") && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    const late = await postJson(`${front.url}/v1/chat/completions`, {
      model: "late",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(late.status, 200);
    assert.equal(openai.received.at(-1)!.body?.model, "gpt-late");
    writeFileSync(frontConfig, "routes:\n  late: { targets: [{ provider: nowhere, model: x }] }\n");
    front.child.kill("SIGHUP");
    while (!front.output().includes("kept the running configuration") && Date.now() < deadline + 10_000)
      await new Promise((r) => setTimeout(r, 50));
    assert.match(front.output(), /freehold\.yaml:2: routes\.late\.targets\[0\]\.provider: no provider named "nowhere"/);
    const still = await postJson(`${front.url}/v1/chat/completions`, {
      model: "late",
      messages: [{ role: "user", content: "hi" }],
    });
    assert.equal(still.status, 200);
    writeFileSync(frontConfig, frontYaml());
    // Both reloads are in the audit trail: who (the signal), what (the file), the new routes or the reason refused.
    const audit = await runCli(["audit", "list", "--format", "json"], { env: { FREEHOLD_HOME: front.home } });
    const entries = (
      JSON.parse(audit.stdout) as { action: string; actor: string; target: string; detail: Record<string, unknown> }[]
    ).filter((entry) => entry.action.startsWith("config."));
    assert.deepEqual(
      entries.map((entry) => [entry.action, entry.actor, entry.target]),
      [
        ["config.reload", "signal:SIGHUP", frontConfig],
        ["config.reload-refused", "signal:SIGHUP", frontConfig],
      ],
    );
    assert.ok((entries[0]!.detail.routes as string[]).includes("late"));
    assert.match(String(entries[1]!.detail.reason), /no provider named "nowhere"/);
  });
});

test("config check names the line and field; doctor --egress lists every destination", async (t) => {
  const directory = temporaryDirectory("freehold-config-");
  t.after(directory.dispose);
  const path = join(directory.path, "freehold.yaml");
  writeFileSync(
    path,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: freehold.yaml's own ${ENV} references, not a JS template
    "providers:\n  cloud:\n    kind: openai\n    base_url: ${CLOUD_URL}\n    api_key: ${CLOUD_KEY}\nroutes:\n  smart:\n    targets:\n      - { provider: cloud, model: m, wieght: 2 }\n",
  );
  const env = { FREEHOLD_HOME: directory.path, CLOUD_URL: "https://api.example.com/v1", CLOUD_KEY: "sk-x" };
  const bad = await runCli(["--config", path, "config", "check"], { env });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /freehold\.yaml:9: routes\.smart\.targets\[0\]\.wieght: unknown field/);
  const missing = await runCli(["--config", path, "config", "check"], {
    env: { FREEHOLD_HOME: directory.path, CLOUD_URL: "https://api.example.com/v1" },
  });
  assert.match(
    missing.stderr,
    /freehold\.yaml:5: providers\.cloud\.api_key: the environment variable CLOUD_KEY is not set/,
  );
  writeFileSync(
    path,
    // biome-ignore lint/suspicious/noTemplateCurlyInString: freehold.yaml's own ${ENV} references, not a JS template
    'providers:\n  cloud: { kind: openai, base_url: "${CLOUD_URL}", api_key: "${CLOUD_KEY}" }\nroutes:\n  smart: { targets: [{ provider: cloud, model: m }, { provider: local, model: l }] }\n',
  );
  const good = await runCli(["--config", path, "config", "check"], { env });
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout, /route smart: cloud\/m → local\/l \(privacy: local-only\)/);
  const egress = await runCli(["--config", path, "doctor", "--egress"], { env });
  assert.equal(egress.code, 0, egress.stderr);
  assert.match(egress.stdout, /https:\/\/api\.example\.com {2}provider cloud \(openai\); used by route smart/);
  assert.match(egress.stdout, /telemetry, update checks, price-list fetches: none/);
  const empty = temporaryDirectory("freehold-config-empty-");
  t.after(empty.dispose);
  // With no providers, the model hub is still a destination (pull); only offline is "nothing".
  const hubOnly = await runCli(["doctor", "--egress"], {
    env: { FREEHOLD_HOME: empty.path, HF_ENDPOINT: "http://hub-mirror.internal:8080/" },
  });
  assert.match(hubOnly.stdout, /^ {2}http:\/\/hub-mirror\.internal:8080 {2}model hub \(HF_ENDPOINT\)/m);
  assert.doesNotMatch(hubOnly.stdout, /outbound: (none|nothing)|no hub client/);
  const offline = await runCli(["doctor", "--egress", "--offline"], { env: { FREEHOLD_HOME: empty.path } });
  assert.match(offline.stdout, /outbound: nothing/);
  assert.match(offline.stdout, /configured but forbidden: https:\/\/huggingface\.co \(model hub/);
  const json = await runCli(["--config", path, "doctor", "--egress", "--json"], { env });
  const report = JSON.parse(json.stdout) as { offline: boolean; destinations: { origin: string; kind: string }[] };
  assert.equal(report.offline, false);
  assert.deepEqual(
    report.destinations.map((d) => [d.kind, d.origin]),
    [
      ["hub", "https://huggingface.co"],
      ["provider", "https://api.example.com"],
    ],
  );
  // Image URLs: each host the owner lists is a destination; * is said as any public host.
  const images = await runCli(["doctor", "--egress", "--json"], {
    env: { FREEHOLD_HOME: empty.path, FREEHOLD_IMAGE_FETCH: "images.example.com, *.cdn.example:8443" },
  });
  const imageReport = JSON.parse(images.stdout) as { destinations: { origin: string; kind: string; detail: string }[] };
  assert.deepEqual(
    imageReport.destinations.filter((d) => d.kind === "image").map((d) => d.origin),
    ["images.example.com", "*.cdn.example:8443"],
  );
  assert.match(imageReport.destinations.find((d) => d.kind === "image")!.detail, /public addresses only/);
  const anyHost = await runCli(["doctor", "--egress"], {
    env: { FREEHOLD_HOME: empty.path, FREEHOLD_IMAGE_FETCH: "*" },
  });
  assert.match(anyHost.stdout, /\(any public http\(s\) host a client names\) {2}image URLs in requests/);
});
