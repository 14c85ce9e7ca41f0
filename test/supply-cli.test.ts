import assert from "node:assert/strict";
import { mkdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ModelStore } from "../src/store/index.js";
import { findAdoptableModels } from "../src/supply/index.js";
import { runCli } from "./helpers/cli.js";
import { type FakeHub, fakeFile, startFakeHub } from "./helpers/fakeHub.js";
import { writeSmallGguf, writeSplitGguf } from "./helpers/gguf.js";
import { temporaryDirectory } from "./helpers/paths.js";

let hub: FakeHub;
const inputs = temporaryDirectory("freehold-supply-inputs-");

before(async () => {
  hub = await startFakeHub({
    "owner/lockme": { files: [fakeFile("lockme-Q4_K_M.gguf", writeSmallGguf(join(inputs.path, "a.gguf"), 21))] },
  });
});

after(async () => {
  await hub.close();
  inputs.dispose();
});

function session(t: { after: (fn: () => void) => void }) {
  const home = temporaryDirectory("freehold-supply-home-");
  const project = temporaryDirectory("freehold-supply-project-");
  t.after(() => {
    home.dispose();
    project.dispose();
  });
  const env = { FREEHOLD_HOME: home.path, HF_ENDPOINT: hub.url, FREEHOLD_OFFLINE: "" };
  const cli = (...args: string[]) => runCli(args, { env, cwd: project.path });
  return { home: home.path, project: project.path, cli, store: new ModelStore({ home: home.path }) };
}

describe("lockfile, verify, adopt and profiles from the command line", () => {
  test("lock → rm → pull --locked → verify passes; a flipped byte fails verify naming the model", async (t) => {
    const { cli, project, store } = session(t);
    const pulled = await cli("pull", "hf.co/owner/lockme");
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(
      pulled.stdout,
      /pulled hf\.co\/owner\/lockme:latest from hf\.co\/owner\/lockme@0123456789ab: Q4_K_M, the default; 1 file, .* sha256 verified/,
    );
    const locked = await cli("lock");
    assert.equal(locked.code, 0, locked.stderr);
    const lockText = readFileSync(join(project, "freehold.lock"), "utf8");
    assert.match(lockText, /^# freehold\.lock/);
    assert.match(lockText, /name: hf\.co\/owner\/lockme:latest/);
    assert.match(lockText, new RegExp(`commit: ${hub.commit}`));
    assert.match(lockText, /path: lockme-Q4_K_M\.gguf/);
    assert.equal((await cli("rm", "hf.co/owner/lockme")).code, 0);
    const installed = await cli("pull", "--locked");
    assert.equal(installed.code, 0, installed.stderr);
    assert.match(installed.stdout, /hf\.co\/owner\/lockme:latest: installed/);
    const again = await cli("pull", "--locked", "--offline");
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /up to date/);
    const verified = await cli("verify");
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /ok: 1 model\(s\) match their manifests and .*freehold\.lock/);

    const [blob] = await store.resolve("hf.co/owner/lockme");
    const bytes = readFileSync(blob!);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
    writeFileSync(blob!, bytes);
    const broken = await cli("verify");
    assert.equal(broken.code, 1);
    assert.match(
      broken.stdout,
      /FAIL hf\.co\/owner\/lockme:latest: lockme-Q4_K_M\.gguf: .* hashes to sha256:[0-9a-f]{64}, but the manifest says/,
    );
    assert.match(
      broken.stdout,
      /FAIL hf\.co\/owner\/lockme:latest: lockme-Q4_K_M\.gguf hashes to .* but freehold\.lock pins/,
    );
  });

  test("pull --locked fails when the hub now serves other bytes, and installs nothing", async (t) => {
    const { cli, store } = session(t);
    assert.equal((await cli("pull", "hf.co/owner/lockme")).code, 0);
    assert.equal((await cli("lock", "hf.co/owner/lockme")).code, 0);
    assert.equal((await cli("rm", "hf.co/owner/lockme")).code, 0);
    const repo = hub.repos.get("owner/lockme")!;
    const original = repo.files[0]!;
    repo.files[0] = fakeFile(original.path, writeSmallGguf(join(inputs.path, "b.gguf"), 22));
    t.after(() => {
      repo.files[0] = original;
    });
    const result = await cli("pull", "--locked");
    assert.equal(result.code, 1);
    assert.match(result.stderr, /now serves different bytes for lockme-Q4_K_M\.gguf .* than freehold\.lock pins/);
    assert.deepEqual(await store.list(), []);
  });

  test("FREEHOLD_OFFLINE=1 refuses a pull with a clear message", async (t) => {
    const { home } = session(t);
    const result = await runCli(["pull", "hf.co/owner/lockme"], {
      env: { FREEHOLD_HOME: home, HF_ENDPOINT: hub.url, FREEHOLD_OFFLINE: "1" },
    });
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /freehold is offline .* will not contact http:\/\/127\.0\.0\.1:\d+ to pull hf\.co\/owner\/lockme/,
    );
  });

  test("adopt finds Ollama, LM Studio and Hugging Face cache models and imports them by reference", async (t) => {
    const { cli, store } = session(t);
    const searchHome = temporaryDirectory("freehold-adopt-home-");
    t.after(searchHome.dispose);
    const root = searchHome.path;
    // Ollama: a manifest naming a model layer in blobs/.
    const ollama = join(root, ".ollama", "models");
    mkdirSync(join(ollama, "blobs"), { recursive: true });
    const ollamaSource = writeSmallGguf(join(inputs.path, "ollama.gguf"), 31);
    const { createHash } = await import("node:crypto");
    const hex = createHash("sha256").update(readFileSync(ollamaSource)).digest("hex");
    writeFileSync(join(ollama, "blobs", `sha256-${hex}`), readFileSync(ollamaSource));
    const manifestDirectory = join(ollama, "manifests", "registry.ollama.ai", "library", "tinyllama");
    mkdirSync(manifestDirectory, { recursive: true });
    writeFileSync(
      join(manifestDirectory, "latest"),
      JSON.stringify({
        schemaVersion: 2,
        layers: [
          { mediaType: "application/vnd.ollama.image.model", digest: `sha256:${hex}`, size: 1 },
          { mediaType: "application/vnd.ollama.image.template", digest: `sha256:${"c".repeat(64)}`, size: 1 },
        ],
      }),
    );
    // LM Studio: publisher/repository/file.gguf, a split set and a projector beside it.
    const lmstudio = join(root, ".lmstudio", "models", "lmstudio-community", "Tiny-GGUF");
    mkdirSync(lmstudio, { recursive: true });
    writeSmallGguf(join(lmstudio, "Tiny-Q4_K_M.gguf"), 32);
    writeSmallGguf(join(lmstudio, "mmproj-Tiny-F16.gguf"), 33);
    writeSplitGguf(lmstudio, "Big-Q8_0", 2, 34);
    // Hugging Face cache: a snapshot whose file is a symbolic link into blobs/.
    const cache = join(root, ".cache", "huggingface", "hub", "models--owner--Small-GGUF");
    mkdirSync(join(cache, "blobs"), { recursive: true });
    mkdirSync(join(cache, "snapshots", "abc123"), { recursive: true });
    writeSmallGguf(join(cache, "blobs", "f00d"), 35);
    symlinkSync(join(cache, "blobs", "f00d"), join(cache, "snapshots", "abc123", "small-q8_0.gguf"));

    const found = await findAdoptableModels(root);
    assert.deepEqual(
      found.map((model) => [model.tool, model.suggestedName]),
      [
        ["ollama", "tinyllama:latest"],
        ["lm-studio", "Tiny-GGUF:Q8_0"],
        ["lm-studio", "Tiny-GGUF:Q4_K_M"],
        ["huggingface", "hf.co/owner/Small-GGUF:Q8_0"],
      ],
    );
    const listed = await cli("adopt", "--search-home", root);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /1\s+ollama\s+tinyllama:latest/);
    const adopted = await cli("adopt", "--search-home", root, "--all");
    assert.equal(adopted.code, 0, adopted.stderr);
    assert.equal((adopted.stdout.match(/adopted /g) ?? []).length, 4);
    const details = await store.show("Tiny-GGUF:Q8_0");
    assert.equal(details.manifest.files.length, 2);
    assert.ok(details.manifest.files.every((file) => file.link !== undefined));
    assert.ok(details.blobPaths[0]!.startsWith(root), "the store points at the original file, no copy");

    // A referenced file that changes is refused, naming it.
    const path = join(lmstudio, "Tiny-Q4_K_M.gguf");
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    await assert.rejects(
      store.resolve("Tiny-GGUF:Q4_K_M"),
      /refers to .*Tiny-Q4_K_M\.gguf, which changed after it was imported by reference/,
    );
  });

  test("create -f with a Modelfile makes a profile over the same blob, and show displays it", async (t) => {
    const { cli, project, store, home } = session(t);
    const base = writeSmallGguf(join(inputs.path, "base.gguf"), 41);
    assert.equal((await cli("import", base, "--name", "base")).code, 0);
    const modelfile = join(project, "Modelfile");
    writeFileSync(
      modelfile,
      [
        "# a profile",
        "FROM base",
        'SYSTEM """You are terse.',
        'Answer in one line."""',
        "PARAMETER temperature 0.2",
        'PARAMETER stop "<|end|>"',
        "PARAMETER num_predict 64",
        "MESSAGE user Hello",
        "MESSAGE assistant Hi.",
        "LICENSE MIT",
      ].join("\n"),
    );
    const created = await cli("create", "terse", "-f", modelfile);
    assert.equal(created.code, 0, created.stderr);
    const details = await store.show("terse");
    assert.deepEqual(details.manifest.profile, {
      system: "You are terse.\nAnswer in one line.",
      sampling: { temperature: 0.2 },
      limits: { stop: ["<|end|>"], maxTokens: 64 },
      messages: [
        { role: "user", content: "Hello" },
        { role: "assistant", content: "Hi." },
      ],
      license: "MIT",
    });
    assert.deepEqual(details.blobPaths, (await store.show("base")).blobPaths);
    assert.deepEqual(readFileSync(join(home, "blobs", details.blobPaths[0]!.split("/").at(-1)!)).length > 0, true);
    const shown = await cli("show", "terse");
    assert.match(shown.stdout, /a profile over base:latest \(same files, no copy\)/);
    assert.match(shown.stdout, /Profile \(applied to every request/);
    assert.match(shown.stdout, /temperature: 0\.2/);
    const goTemplate = join(project, "Go");
    writeFileSync(goTemplate, 'FROM base\nTEMPLATE """{{ .System }} {{ .Prompt }}"""\n');
    const refused = await cli("create", "go", "-f", goTemplate);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /Go template syntax .* Jinja/);
  });
});
