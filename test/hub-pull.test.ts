import assert from "node:assert/strict";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { HubClient, type HubClientOptions } from "../src/hub/index.js";
import { ModelStore } from "../src/store/index.js";
import { ModelPuller, type PullProgress } from "../src/supply/index.js";
import { type FakeHub, fakeFile, sha256, startFakeHub } from "./helpers/fakeHub.js";
import { writeSmallGguf, writeSplitGguf } from "./helpers/gguf.js";
import { temporaryDirectory } from "./helpers/paths.js";

let hub: FakeHub;
const inputs = temporaryDirectory("freehold-hub-inputs-");
const model = (seed: number) => writeSmallGguf(join(inputs.path, `m${seed}.gguf`), seed);

function fixture(t: { after: (fn: () => void) => void }, options: Partial<HubClientOptions> = {}) {
  const home = temporaryDirectory("freehold-hub-home-");
  t.after(home.dispose);
  const store = new ModelStore({ home: home.path });
  const client = new HubClient({ endpoint: hub.url, backoffMs: 5, stallTimeoutMs: 400, ...options });
  return { store, client, puller: new ModelPuller(store, client), home: home.path };
}

const hubRequests = (path: string) => hub.log.filter((entry) => entry.path.includes(path));

before(async () => {
  const split = writeSplitGguf(inputs.path, "Big-Q8_0", 2, 7);
  hub = await startFakeHub({
    "owner/model-GGUF": {
      files: [
        fakeFile("Model-Q4_K_M.gguf", model(1)),
        fakeFile("Model-Q8_0.gguf", model(2)),
        fakeFile("mmproj-Model-F16.gguf", model(3)),
        { path: "README.md", bytes: Buffer.from("# readme") },
      ],
    },
    "owner/no-q4km": { files: [fakeFile("x.Q8_0.gguf", model(4)), fakeFile("x.Q5_K_M.gguf", model(5))] },
    "owner/split": { files: split.map((path, i) => fakeFile(`Q8_0/Big-Q8_0-0000${i + 1}-of-00002.gguf`, path)) },
    "owner/cut": { files: [fakeFile("cut-Q4_K_M.gguf", model(6))], cutOnce: true },
    "owner/stall": { files: [fakeFile("stall-Q4_K_M.gguf", model(7))], stallOnce: true },
    "owner/wrong": {
      files: [{ ...fakeFile("wrong-Q4_K_M.gguf", model(8)), listedSha256: "a".repeat(64) }],
    },
    "owner/gated": { files: [fakeFile("gated-Q4_K_M.gguf", model(9))], token: "hf_secret" },
    "owner/busy": { files: [fakeFile("busy-Q4_K_M.gguf", model(10))], rateLimitOnce: true },
    "owner/evil": {
      files: [fakeFile("ok-Q4_K_M.gguf", model(11))],
      extraEntries: [
        { type: "file", oid: "e".repeat(40), size: 4, path: "../evil.gguf", lfs: { oid: "b".repeat(64), size: 4 } },
      ],
    },
    "owner/shared": { files: [fakeFile("shared-Q4_K_M.gguf", model(12))] },
  });
});

after(async () => {
  await hub.close();
  inputs.dispose();
});

describe("pull from a hub", () => {
  test("hf.co/OWNER/REPO picks Q4_K_M, pins the commit and stores the verified file", async (t) => {
    const { puller, store } = fixture(t);
    const progress: PullProgress[] = [];
    const result = await puller.pull("hf.co/owner/model-GGUF", { onProgress: (p) => progress.push(p) });
    assert.equal(result.name, "hf.co/owner/model-GGUF:latest");
    assert.equal(result.quantization, "Q4_K_M");
    assert.match(result.reason, /Q4_K_M, the default/);
    const expected = sha256(hub.repos.get("owner/model-GGUF")!.files[0]!.bytes);
    assert.equal(result.files[0]!.digest, `sha256:${expected}`);
    const details = await store.show(result.name);
    assert.deepEqual(details.manifest.source, {
      kind: "hub",
      endpoint: `${hub.url}/`,
      repo: "owner/model-GGUF",
      revision: "main",
      commit: hub.commit,
    });
    assert.equal(details.manifest.files[0]!.filename, "Model-Q4_K_M.gguf");
    const statuses = progress.map((p) => p.status);
    assert.equal(statuses[0], "pulling manifest");
    assert.ok(statuses.includes(`pulling ${expected.slice(0, 12)}`));
    assert.deepEqual(statuses.slice(-3), ["verifying sha256 digest", "writing manifest", "success"]);
    const last = progress.filter((p) => p.digest).at(-1)!;
    assert.equal(last.completed, last.total);
    // Nothing is left in downloads/ once the blob is in place.
    assert.deepEqual(
      readdirSync(join(store.home, "downloads")).filter((name) => name.endsWith(".partial")),
      [],
    );
  });

  test("a quantization is matched case-insensitively and names the model", async (t) => {
    const { puller } = fixture(t);
    const result = await puller.pull("hf.co/owner/model-GGUF:q8_0");
    assert.equal(result.name, "hf.co/owner/model-GGUF:q8_0");
    assert.equal(result.files[0]!.filename, "Model-Q8_0.gguf");
    await assert.rejects(puller.pull("hf.co/owner/model-GGUF:Q2_K"), /has no Q2_K model.*Q4_K_M, Q8_0/);
  });

  test("without Q4_K_M the closest quantization is chosen, and the reason says so", async (t) => {
    const { puller } = fixture(t);
    const result = await puller.pull("hf.co/owner/no-q4km");
    assert.equal(result.files[0]!.filename, "x.Q5_K_M.gguf");
    assert.match(result.reason, /Q5_K_M, the closest to Q4_K_M/);
  });

  test("a split set comes whole from any of its shard names, and @REVISION is looked up", async (t) => {
    const { puller, store } = fixture(t);
    const result = await puller.pull("hf.co/owner/split/Q8_0/Big-Q8_0-00002-of-00002.gguf@v1.0");
    assert.deepEqual(
      result.files.map((file) => file.filename),
      ["Q8_0/Big-Q8_0-00001-of-00002.gguf", "Q8_0/Big-Q8_0-00002-of-00002.gguf"],
    );
    assert.equal(result.name, "hf.co/owner/split:Q8_0");
    assert.equal((await store.resolve(result.name)).length, 2);
    assert.ok(hubRequests("/api/models/owner/split/revision/v1.0").length > 0);
  });

  test("a connection cut half way resumes with Range", async (t) => {
    const { puller } = fixture(t);
    const result = await puller.pull("hf.co/owner/cut");
    const ranges = hubRequests("cut-Q4_K_M.gguf").filter((entry) => entry.server === "cdn");
    assert.equal(ranges.length, 2);
    assert.equal(ranges[0]!.range, undefined);
    assert.match(ranges[1]!.range ?? "", /^bytes=[1-9]\d*-$/);
    assert.equal(result.files[0]!.digest, `sha256:${sha256(hub.repos.get("owner/cut")!.files[0]!.bytes)}`);
  });

  test("a stalled download is abandoned after the stall timeout and resumed", async (t) => {
    const { puller } = fixture(t, { stallTimeoutMs: 300 });
    const started = Date.now();
    const result = await puller.pull("hf.co/owner/stall");
    assert.ok(Date.now() - started >= 300);
    assert.equal(hubRequests("stall-Q4_K_M.gguf").filter((entry) => entry.server === "cdn").length, 2);
    assert.equal(result.files.length, 1);
  });

  test("a wrong sha256 fails loudly and stores nothing", async (t) => {
    const { puller, store } = fixture(t);
    await assert.rejects(puller.pull("hf.co/owner/wrong"), (error: Error & { code?: string }) => {
      assert.equal(error.code, "digest_mismatch");
      assert.match(
        error.message,
        /wrong-Q4_K_M\.gguf .* has sha256 .* but the hub lists a{64}; the download was deleted/,
      );
      return true;
    });
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(
      readdirSync(join(store.home, "downloads")).filter((name) => name.endsWith(".partial")),
      [],
    );
    assert.equal(existsSync(join(store.home, "blobs")) ? readdirSync(join(store.home, "blobs")).length : 0, 0);
  });

  test("a gated repository needs HF_TOKEN, which never reaches the CDN's host", async (t) => {
    await assert.rejects(fixture(t).puller.pull("hf.co/owner/gated"), /needs a token .* set HF_TOKEN/);
    const { puller } = fixture(t, { token: "hf_secret" });
    await puller.pull("hf.co/owner/gated");
    const requests = hubRequests("gated");
    assert.ok(requests.some((entry) => entry.server === "hub" && entry.authorization === "Bearer hf_secret"));
    const cdn = requests.filter((entry) => entry.server === "cdn");
    assert.equal(cdn.length, 1);
    assert.equal(cdn[0]!.authorization, undefined);
  });

  test("an unknown repository is a 404 that says so", async (t) => {
    await assert.rejects(fixture(t).puller.pull("hf.co/owner/missing"), (error: Error & { status?: number }) => {
      assert.equal(error.status, 404);
      assert.match(error.message, /no such repository/);
      return true;
    });
  });

  test("429 is retried after Retry-After and then succeeds", async (t) => {
    const result = await fixture(t).puller.pull("hf.co/owner/busy");
    assert.equal(result.files.length, 1);
    assert.equal(hubRequests("/api/models/owner/busy/tree").length, 2);
  });

  test("a listing with a ../ file name is refused", async (t) => {
    await assert.rejects(fixture(t).puller.pull("hf.co/owner/evil"), /"\.\.\/evil\.gguf".*not a safe relative path/);
  });

  test("offline refuses before any request", async (t) => {
    const before = hub.log.length;
    await assert.rejects(
      fixture(t, { offline: true }).puller.pull("hf.co/owner/model-GGUF"),
      /offline .*FREEHOLD_OFFLINE/,
    );
    assert.equal(hub.log.length, before);
  });

  test("concurrent pulls of the same file share one download", async (t) => {
    const { puller } = fixture(t);
    const [a, b] = await Promise.all([puller.pull("hf.co/owner/shared"), puller.pull("hf.co/owner/shared:Q4_K_M")]);
    assert.equal(a.files[0]!.digest, b.files[0]!.digest);
    assert.equal(hubRequests("shared-Q4_K_M.gguf").filter((entry) => entry.server === "cdn").length, 1);
  });

  test("names that are not hub references get a 501 that points at import", async (t) => {
    await assert.rejects(fixture(t).puller.pull("llama3"), (error: Error & { status?: number }) => {
      assert.equal(error.status, 501);
      assert.match(error.message, /freehold import/);
      return true;
    });
  });
});
