import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { applyProfile } from "../src/core/profile.js";
import { parseHubReference } from "../src/hub/index.js";
import { Freehold } from "../src/library.js";
import { lockModels, parseModelfile, parseProfile } from "../src/supply/index.js";
import { type FakeHub, fakeFile, startFakeHub } from "./helpers/fakeHub.js";
import { writeSmallGguf } from "./helpers/gguf.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";

describe("references and profiles (parsing)", () => {
  test("hub references: quantization, file, revision; bad ones name the problem", () => {
    assert.deepEqual(parseHubReference("hf.co/bartowski/Llama-3.2-1B-Instruct-GGUF:q4_k_m"), {
      repo: "bartowski/Llama-3.2-1B-Instruct-GGUF",
      quantization: "q4_k_m",
      file: null,
      revision: "main",
      revisionGiven: false,
    });
    assert.deepEqual(parseHubReference("huggingface.co/o/r/sub/m.gguf@v2"), {
      repo: "o/r",
      quantization: null,
      file: "sub/m.gguf",
      revision: "v2",
      revisionGiven: true,
    });
    assert.equal(parseHubReference("hf.co/o/r@abc:Q8_0").quantization, "Q8_0");
    for (const [reference, reason] of [
      ["llama3", /does not start with hf\.co/],
      ["hf.co/o", /names no repository/],
      ["hf.co/o/r/../x.gguf", /not a safe relative path/],
      ["hf.co/o/r/readme.md", /not a \.gguf file/],
      ["hf.co/o/r@..", /not a branch, tag or commit/],
      ["hf.co/o/r:Q4:Q8", /not valid|twice/],
    ] as const) {
      assert.throws(() => parseHubReference(reference), reason, reference);
    }
  });

  test("Modelfile and YAML profiles; unsupported parameters and instructions are refused by name", () => {
    const yaml = parseProfile(
      'from: base\nsystem: Be brief.\nparameters:\n  top_k: 20\n  stop: ["\\n\\n"]\nmessages:\n  - {role: user, content: hi}\n',
    );
    assert.deepEqual(yaml, {
      from: "base",
      profile: {
        system: "Be brief.",
        sampling: { topK: 20 },
        limits: { stop: ["\n\n"] },
        messages: [{ role: "user", content: "hi" }],
      },
    });
    const modelfile = parseModelfile('from base\ntemplate "{% for m in messages %}{{ m.content }}{% endfor %}"\n');
    assert.equal(modelfile.profile.template, "{% for m in messages %}{{ m.content }}{% endfor %}");
    for (const [text, reason] of [
      ["SYSTEM hi", /FROM is required/],
      ["FROM ./model.gguf", /is a file; import it first/],
      ["FROM base\nPARAMETER num_ctx 4096", /num_ctx is not supported: .*FREEHOLD_CONTEXT_SIZE/],
      ["FROM base\nPARAMETER mirostat 2", /unknown parameter "mirostat"/],
      ["FROM base\nPARAMETER top_k 1.5", /top_k must be an integer/],
      ["FROM base\nADAPTER ./lora.gguf", /ADAPTER .* not supported/],
      ['FROM base\nSYSTEM """never closed', /not closed/],
      ["FROM base\nMESSAGE robot hi", /role "robot"/],
      ["from: base\ncolour: blue\n", /unknown field "colour"/],
    ] as const) {
      assert.throws(() => parseProfile(text), reason, text);
    }
  });

  test("a profile fills in what the request leaves out; the request's own values win", () => {
    const profile = {
      system: "Be brief.",
      sampling: { temperature: 0.1, topK: 5 },
      limits: { maxTokens: 7, stop: ["END"] },
      messages: [{ role: "user" as const, content: "example" }],
    };
    const user = { role: "user" as const, content: "question" };
    const applied = applyProfile(
      { kind: "chat", model: "m", messages: [user], sampling: { temperature: 0.9, topP: undefined }, limits: {} },
      profile,
    );
    assert.ok(applied.kind === "chat");
    assert.deepEqual(applied.messages, [
      { role: "system", content: "Be brief." },
      { role: "user", content: "example" },
      user,
    ]);
    assert.deepEqual(applied.sampling, { temperature: 0.9, topK: 5 });
    assert.deepEqual(applied.limits, { maxTokens: 7, stop: ["END"] });
    const ownSystem = applyProfile(
      {
        kind: "chat",
        model: "m",
        messages: [{ role: "system", content: "Mine." }, user],
        sampling: {},
        limits: { stop: [] },
      },
      profile,
    );
    assert.ok(ownSystem.kind === "chat");
    assert.equal(ownSystem.messages[0]!.content, "Mine.");
    assert.deepEqual(ownSystem.limits.stop, []);
  });
});

describe("POST /api/pull and /api/create", () => {
  let hub: FakeHub;
  let freehold: Freehold;
  const home = temporaryDirectory("freehold-api-home-");
  const inputs = temporaryDirectory("freehold-api-inputs-");

  before(async () => {
    hub = await startFakeHub({
      "owner/api": { files: [fakeFile("api-Q4_K_M.gguf", writeSmallGguf(join(inputs.path, "a.gguf"), 51))] },
      "owner/bad": {
        files: [{ ...fakeFile("bad-Q4_K_M.gguf", join(inputs.path, "a.gguf")), listedSha256: "0".repeat(64) }],
      },
    });
    freehold = await Freehold.open({ home: home.path, hfEndpoint: hub.url, offline: false });
  });

  after(async () => {
    await freehold.close();
    await hub.close();
    home.dispose();
    inputs.dispose();
  });

  const post = (path: string, body: unknown) =>
    freehold.httpApp().request(path, {
      method: "POST",
      body: JSON.stringify(body),
      headers: { host: "127.0.0.1", "content-type": "application/json" },
    });

  test("pull streams Ollama's NDJSON progress and ends with success", async () => {
    const response = await post("/api/pull", { model: "hf.co/owner/api:Q4_K_M" });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /application\/x-ndjson/);
    const lines = (await response.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { status: string; digest?: string; total?: number; completed?: number });
    assert.equal(lines[0]!.status, "pulling manifest");
    const file = lines.find((line) => line.digest);
    assert.ok(file && /^pulling [0-9a-f]{12}$/.test(file.status) && typeof file.total === "number");
    assert.equal(lines.filter((line) => line.digest).at(-1)!.completed, file.total);
    assert.deepEqual(
      lines.slice(-3).map((line) => line.status),
      ["verifying sha256 digest", "writing manifest", "success"],
    );
    const tags = (await (await freehold.httpApp().request("/api/tags", { headers: { host: "127.0.0.1" } })).json()) as {
      models: { name: string }[];
    };
    assert.ok(tags.models.some((model) => model.name === "hf.co/owner/api:Q4_K_M"));
  });

  test("stream:false answers one object; failures are Ollama-shaped errors with a status", async () => {
    const ok = await post("/api/pull", { model: "hf.co/owner/api", stream: false });
    assert.deepEqual(await ok.json(), { status: "success" });
    const bad = await post("/api/pull", { model: "hf.co/owner/bad", stream: false });
    assert.equal(bad.status, 502);
    assert.match(((await bad.json()) as { error: string }).error, /has sha256 .* but the hub lists 0{64}/);
    const missing = await post("/api/pull", {});
    assert.equal(missing.status, 400);
    assert.match(((await missing.json()) as { error: string }).error, /model/);
    const registry = await post("/api/pull", { model: "llama3" });
    assert.equal(registry.status, 501);
  });

  test("a failure after the first progress line arrives as an error line", async () => {
    const response = await post("/api/pull", { model: "hf.co/owner/bad" });
    assert.equal(response.status, 200);
    const lines = (await response.text())
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as Record<string, string>);
    assert.equal(lines[0]!.status, "pulling manifest");
    assert.match(lines.at(-1)!.error ?? "", /sha256/);
  });

  test("create takes Ollama's fields or a Modelfile; show reports the profile", async () => {
    const created = await post("/api/create", {
      model: "helper",
      from: "hf.co/owner/api:Q4_K_M",
      system: "You help.",
      parameters: { temperature: 0.3, stop: ["###"] },
      stream: false,
    });
    assert.equal(created.status, 200, await created.clone().text());
    const shown = (await (await post("/api/show", { model: "helper" })).json()) as Record<string, string>;
    assert.equal(shown.system, "You help.");
    assert.match(shown.parameters!, /temperature 0\.3\nstop "###"/);
    assert.match(shown.modelfile!, /from: hf\.co\/owner\/api:Q4_K_M/);
    const streamed = await post("/api/create", { name: "helper2", modelfile: "FROM helper\nPARAMETER top_k 3\n" });
    const statuses = (await streamed.text())
      .trim()
      .split("\n")
      .map((line) => (JSON.parse(line) as { status: string }).status);
    assert.equal(statuses[0], "reading model metadata");
    assert.equal(statuses.at(-1), "success");
    const inherited = (await (await post("/api/show", { model: "helper2" })).json()) as Record<string, string>;
    assert.equal(inherited.system, "You help.");
    assert.match(inherited.parameters!, /top_k 3/);
    const noBase = await post("/api/create", { model: "x", from: "nope", stream: false });
    assert.equal(noBase.status, 404);
    const badParameter = await post("/api/create", { model: "x", from: "helper", parameters: { num_ctx: 8 } });
    assert.equal(badParameter.status, 400);
    assert.match(((await badParameter.json()) as { error: string }).error, /num_ctx/);
  });
});

describe("profiles applied by the engine", { skip: storiesModelMissing }, () => {
  test("num_predict, stop and system come from the profile unless the request sets them", async (t) => {
    const home = temporaryDirectory("freehold-profile-model-");
    const freehold = await Freehold.open({ home: home.path, threads: 1, parallel: 1 });
    t.after(async () => {
      await freehold.close();
      home.dispose();
    });
    await freehold.store.import(storiesModelPath, "stories");
    await freehold.store.create("short", "stories", { limits: { maxTokens: 3 }, sampling: { temperature: 0 } });
    const short = await freehold.completeText({ model: "short", prompt: "Once upon a time" });
    assert.equal(short.usage.completionTokens, 3);
    const longer = await freehold.completeText({ model: "short", prompt: "Once upon a time", maxTokens: 6 });
    assert.equal(longer.usage.completionTokens, 6);
    await freehold.store.create("stopper", "stories", { limits: { stop: ["Lily"] }, sampling: { temperature: 0 } });
    const stopped = await freehold.completeText({ model: "stopper", prompt: "Once upon a time", maxTokens: 20 });
    assert.equal(stopped.text, ", there was a little girl named ");
    await freehold.store.create("chatty", "stories", { system: "You are a storyteller who tells long stories." });
    const plain = await freehold.chatText({
      model: "stories",
      messages: [{ role: "user", content: "Hi" }],
      maxTokens: 1,
    });
    const withSystem = await freehold.chatText({
      model: "chatty",
      messages: [{ role: "user", content: "Hi" }],
      maxTokens: 1,
    });
    assert.ok(withSystem.usage.promptTokens > plain.usage.promptTokens + 5);
  });

  test("serve --locked serves only the models freehold.lock pins, as it pins them", async (t) => {
    const home = temporaryDirectory("freehold-locked-home-");
    const lockfile = join(home.path, "freehold.lock");
    const setup = await Freehold.open({ home: home.path });
    await setup.store.import(storiesModelPath, "pinned");
    await setup.store.import(storiesModelPath, "unpinned");
    await lockModels(setup.store, lockfile, ["pinned"]);
    await setup.close();
    const freehold = await Freehold.open({ home: home.path, threads: 1, parallel: 1, lockfile });
    // One hook, in order: the server closes before its home is removed (after-hooks run in registration order).
    t.after(async () => {
      await freehold.close();
      home.dispose();
    });
    const answer = await freehold.completeText({
      model: "pinned",
      prompt: "Once upon a time",
      maxTokens: 2,
      temperature: 0,
    });
    assert.equal(answer.usage.completionTokens, 2);
    await assert.rejects(
      freehold.completeText({ model: "unpinned", prompt: "Once", maxTokens: 1 }),
      /'unpinned:latest' is not in .*freehold\.lock; this server serves only locked models/,
    );
    await freehold.store.import(writeSmallGguf(join(home.path, "other.gguf"), 61), "pinned");
    await assert.rejects(
      freehold.completeText({ model: "pinned", prompt: "Once", maxTokens: 1 }),
      /'pinned:latest' is not the version .*freehold\.lock pins/,
    );
  });
});
