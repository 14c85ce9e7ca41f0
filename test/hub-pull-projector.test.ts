import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { GgufValueType } from "../src/gguf/index.js";
import { chooseProjector, HubClient, type HubFile } from "../src/hub/index.js";
import { ModelStore } from "../src/store/index.js";
import { lockEntry, ModelPuller } from "../src/supply/index.js";
import { type FakeHub, fakeFile, sha256, startFakeHub } from "./helpers/fakeHub.js";
import { writeSmallGguf } from "./helpers/gguf.js";
import { temporaryDirectory } from "./helpers/paths.js";

/** `pull` fetches a repository's vision projector (mmproj-*.gguf) beside the model, verified and pinned like it. */

let hub: FakeHub;
const inputs = temporaryDirectory("freehold-hub-projector-");
const model = (seed: number) => writeSmallGguf(join(inputs.path, `m${seed}.gguf`), seed);
const projector = (seed: number) =>
  writeSmallGguf(join(inputs.path, `p${seed}.gguf`), seed, [
    ["general.architecture", { type: GgufValueType.STRING, value: "clip" }],
    ["clip.has_vision_encoder", { type: GgufValueType.BOOL, value: true }],
  ]);

function fixture(t: { after: (fn: () => void) => void }) {
  const home = temporaryDirectory("freehold-hub-projector-home-");
  t.after(home.dispose);
  const store = new ModelStore({ home: home.path });
  const client = new HubClient({ endpoint: hub.url, backoffMs: 5, stallTimeoutMs: 400 });
  return { store, puller: new ModelPuller(store, client) };
}

const bytesOf = (repo: string, path: string) => hub.repos.get(repo)!.files.find((file) => file.path === path)!.bytes;

before(async () => {
  hub = await startFakeHub({
    "owner/vision": {
      files: [
        fakeFile("Model-Q4_K_M.gguf", model(1)),
        fakeFile("Model-Q8_0.gguf", model(2)),
        fakeFile("mmproj-BF16.gguf", projector(3)),
        fakeFile("mmproj-F16.gguf", projector(4)),
        fakeFile("mmproj-F32.gguf", projector(5)),
        fakeFile("mmproj-Q8_0.gguf", projector(6)),
      ],
    },
    "owner/folders": {
      files: [
        fakeFile("Q8_0/model-Q8_0.gguf", model(7)),
        fakeFile("Q8_0/mmproj-model-f16.gguf", projector(8)),
        fakeFile("F16/model-F16.gguf", model(9)),
        fakeFile("F16/mmproj-model-f16.gguf", projector(10)),
      ],
    },
    "owner/bad-projector": {
      files: [
        fakeFile("m-Q4_K_M.gguf", model(11)),
        { ...fakeFile("mmproj-F16.gguf", projector(12)), listedSha256: "c".repeat(64) },
      ],
    },
    "owner/audio": { files: [fakeFile("m-Q4_K_M.gguf", model(13)), fakeFile("mmproj-F16.gguf", model(14))] },
  });
});

after(async () => {
  await hub.close();
  inputs.dispose();
});

describe("pull fetches the projector", () => {
  test("beside the default model: F16 when none matches Q4_K_M; digest pinned, shown, resolved", async (t) => {
    const { puller, store } = fixture(t);
    const result = await puller.pull("hf.co/owner/vision");
    assert.equal(result.files[0]!.filename, "Model-Q4_K_M.gguf");
    assert.equal(result.projector?.filename, "mmproj-F16.gguf");
    assert.match(result.projectorReason ?? "", /F16, none matches the model's Q4_K_M/);
    const details = await store.show(result.name);
    assert.deepEqual(details.manifest.projector, {
      digest: `sha256:${sha256(bytesOf("owner/vision", "mmproj-F16.gguf"))}`,
      size: bytesOf("owner/vision", "mmproj-F16.gguf").length,
      filename: "mmproj-F16.gguf",
    });
    assert.ok(details.projectorPath && existsSync(details.projectorPath));
    // The model's files stay the model's: the projector is not a shard.
    assert.equal((await store.resolve(result.name)).length, 1);
    // freehold.lock pins it, and a pinned install into an empty store brings it back.
    const entry = await lockEntry(store, result.name);
    assert.deepEqual(entry.projector, {
      path: "mmproj-F16.gguf",
      digest: details.manifest.projector!.digest,
      size: details.manifest.projector!.size,
    });
    const fresh = fixture(t);
    const pinned = await fresh.puller.pullPinned(result.name, {
      repo: "owner/vision",
      revision: "main",
      commit: hub.commit,
      files: entry.files,
      projector: entry.projector,
    });
    assert.equal(pinned.projector?.digest, entry.projector!.digest);
    assert.equal((await fresh.store.show(result.name)).manifest.projector?.filename, "mmproj-F16.gguf");
  });

  test("the model's own precision wins when a projector has it", async (t) => {
    const { puller } = fixture(t);
    const result = await puller.pull("hf.co/owner/vision:Q8_0");
    assert.equal(result.projector?.filename, "mmproj-Q8_0.gguf");
    assert.match(result.projectorReason ?? "", /Q8_0, the model's own precision/);
  });

  test("a repository with a folder per quantization gives the projector in the model's folder", async (t) => {
    const { puller } = fixture(t);
    const q8 = await puller.pull("hf.co/owner/folders:Q8_0");
    assert.equal(q8.projector?.filename, "Q8_0/mmproj-model-f16.gguf");
    const f16 = await puller.pull("hf.co/owner/folders:F16");
    assert.equal(f16.projector?.filename, "F16/mmproj-model-f16.gguf");
    assert.notEqual(q8.projector?.digest, f16.projector?.digest);
  });

  test("a projector whose bytes do not match the listing's sha256 fails the pull; nothing is stored", async (t) => {
    const { puller, store } = fixture(t);
    await assert.rejects(puller.pull("hf.co/owner/bad-projector"), /sha256|digest/i);
    assert.deepEqual(await store.list(), []);
  });

  test("an mmproj that is not a vision projector is left out, saying why; the model is stored", async (t) => {
    const { puller, store } = fixture(t);
    const result = await puller.pull("hf.co/owner/audio");
    assert.equal(result.projector, undefined);
    assert.match(result.projectorSkipped ?? "", /not a vision projector/);
    assert.equal((await store.show(result.name)).manifest.projector, undefined);
    assert.deepEqual(
      readdirSync(join(store.home, "downloads")).filter((name) => !name.endsWith(".lock")),
      [],
    );
  });
});

describe("pull --no-projector", () => {
  test("the model is pulled without its projector, which is not downloaded; the result says what was left out", async (t) => {
    const { puller, store } = fixture(t);
    const result = await puller.pull("hf.co/owner/vision", { projector: false });
    assert.equal(result.files[0]!.filename, "Model-Q4_K_M.gguf");
    assert.equal(result.projector, undefined);
    assert.match(result.projectorSkipped ?? "", /--no-projector: mmproj-F16\.gguf was not fetched/);
    const details = await store.show(result.name);
    assert.equal(details.manifest.projector, undefined);
    assert.equal(details.projectorPath, undefined);
    const projectorDigest = `sha256-${sha256(bytesOf("owner/vision", "mmproj-F16.gguf"))}`;
    assert.ok(!readdirSync(join(store.home, "blobs")).some((name) => name.startsWith(projectorDigest)));
    assert.equal((await lockEntry(store, result.name)).projector, undefined, "the lockfile pins no projector");
  });

  test("the CLI: --no-projector, `show` says none; with --locked it is a usage error", async (t) => {
    const home = temporaryDirectory("freehold-hub-projector-cli-");
    t.after(home.dispose);
    const { runCli } = await import("./helpers/cli.js");
    const env = { ...process.env, FREEHOLD_HOME: home.path, HF_ENDPOINT: hub.url };
    const pulled = await runCli(["pull", "hf.co/owner/vision", "--no-projector", "--name", "textonly"], { env });
    assert.equal(pulled.code, 0, pulled.stderr);
    assert.match(pulled.stdout, /projector left out: --no-projector: mmproj-F16\.gguf was not fetched/);
    assert.doesNotMatch(pulled.stdout, /^vision projector /m);
    const shown = await runCli(["show", "textonly"], { env });
    assert.match(shown.stdout, /vision projector +none \(text only\)/);
    assert.doesNotMatch(shown.stdout, /Vision projector \(images/);
    const withProjector = await runCli(["pull", "hf.co/owner/vision", "--name", "seeing"], { env });
    assert.equal(withProjector.code, 0, withProjector.stderr);
    assert.match((await runCli(["show", "seeing"], { env })).stdout, /vision projector +mmproj-F16\.gguf \(below\)/);
    const locked = await runCli(["pull", "--locked", "--no-projector"], { env });
    assert.equal(locked.code, 2);
    assert.match(locked.stderr, /--no-projector applies to a plain pull/);
  });
});

describe("chooseProjector", () => {
  const file = (path: string): HubFile => ({ path, size: 1, sha256: "a".repeat(64) });
  const modelOf = (path: string, quantization: string | null) => ({ quantization, files: [file(path)] });
  test("none, one, matching, fallback order, first by name", () => {
    assert.equal(chooseProjector([file("m-Q4_K_M.gguf")], modelOf("m-Q4_K_M.gguf", "Q4_K_M")), null);
    assert.equal(chooseProjector([file("mmproj.gguf")], modelOf("m-Q4_K_M.gguf", "Q4_K_M"))?.file.path, "mmproj.gguf");
    const several = ["mmproj-F32.gguf", "mmproj-BF16.gguf", "mmproj-Q8_0.gguf"].map(file);
    assert.equal(chooseProjector(several, modelOf("m-Q4_K_M.gguf", "Q4_K_M"))?.file.path, "mmproj-BF16.gguf");
    assert.equal(chooseProjector(several, modelOf("m-Q8_0.gguf", "Q8_0"))?.file.path, "mmproj-Q8_0.gguf");
    const unnamed = ["mmproj-b.gguf", "mmproj-a.gguf"].map(file);
    assert.equal(chooseProjector(unnamed, modelOf("m.gguf", null))?.file.path, "mmproj-a.gguf");
    // Not projectors: an imatrix, a README, a model whose name merely contains "proj".
    const others = ["imatrix.gguf", "README.md", "project-Q4_K_M.gguf"].map(file);
    assert.equal(chooseProjector(others, modelOf("m.gguf", null)), null);
  });
});
