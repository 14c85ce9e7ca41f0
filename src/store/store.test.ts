import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { writeSmallGguf, writeSplitGguf } from "../../test/helpers/gguf.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "../../test/helpers/paths.js";
import { ModelFileError, NotFoundError, StoreError } from "../core/errors.js";
import { ModelStore } from "./store.js";

const directory = temporaryDirectory("freehold-store-test-");
after(directory.dispose);
let counter = 0;

/** A fresh store and a folder for input files. */
function fixture(): { store: ModelStore; home: string; inputs: string } {
  const root = join(directory.path, String(counter++));
  const inputs = join(root, "inputs");
  mkdirSync(inputs, { recursive: true });
  const home = join(root, "home");
  return { store: new ModelStore({ home }), home, inputs };
}

function sha256(path: string): string {
  return `sha256:${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
}

function blobNames(home: string): string[] {
  return readdirSync(join(home, "blobs")).sort();
}

function temporaryNames(home: string): string[] {
  return existsSync(join(home, "tmp")) ? readdirSync(join(home, "tmp")) : [];
}

describe("ModelStore", () => {
  test("import → list → show → resolve → cp → rm round-trips, sharing and then freeing the blob", async (t) => {
    if (storiesModelMissing) return t.skip(storiesModelMissing);
    const { store, home } = fixture();
    const digest = sha256(storiesModelPath);

    const imported = await store.import(storiesModelPath, "stories");
    assert.equal(imported.name, "stories:latest");
    assert.equal(imported.replaced, false);
    assert.equal(imported.files.length, 1);
    assert.equal(imported.files[0]!.digest, digest);
    assert.equal(imported.files[0]!.filename, "stories260K.gguf");
    assert.equal(imported.files[0]!.reused, false);
    assert.equal(imported.summary.architecture, "llama");
    assert.deepEqual(blobNames(home), [digest.replace(":", "-")]);
    assert.deepEqual(readFileSync(join(home, "blobs", digest.replace(":", "-"))), readFileSync(storiesModelPath));

    const [entry, ...rest] = await store.list();
    assert.equal(rest.length, 0);
    assert.equal(entry!.name, "stories:latest");
    assert.equal(entry!.digest, digest);
    assert.equal(entry!.size, statSync(storiesModelPath).size);
    assert.equal(entry!.parameters, imported.summary.parameterSize);
    assert.equal(entry!.quantization, imported.summary.fileType);
    assert.equal(entry!.synthetic, false);
    assert.ok(Date.now() - entry!.modifiedAt.getTime() < 60_000);

    const shown = await store.show("stories:latest");
    assert.equal(shown.manifest.schemaVersion, 1);
    assert.deepEqual(shown.manifest.source, { kind: "import", path: storiesModelPath });
    assert.deepEqual(shown.blobPaths, [join(home, "blobs", digest.replace(":", "-"))]);
    assert.deepEqual(await store.resolve("stories"), shown.blobPaths);

    const copied = await store.copy("stories", "hf.co/karpathy/tinyllamas:stories260K");
    assert.equal(copied.name, "hf.co/karpathy/tinyllamas:stories260K");
    assert.deepEqual(copied.blobPaths, shown.blobPaths);
    assert.deepEqual((await store.list()).map((model) => model.name).sort(), [
      "hf.co/karpathy/tinyllamas:stories260K",
      "stories:latest",
    ]);
    assert.equal(blobNames(home).length, 1, "a copy shares the blob");

    const first = await store.remove("stories");
    assert.deepEqual(first, { name: "stories:latest", removedBlobs: [] });
    assert.deepEqual(await store.resolve("hf.co/karpathy/tinyllamas:stories260K"), shown.blobPaths);
    const last = await store.remove("HF.CO/karpathy/TinyLlamas:stories260k");
    assert.deepEqual(last, { name: "hf.co/karpathy/tinyllamas:stories260K", removedBlobs: [digest] });
    assert.deepEqual(blobNames(home), []);
    assert.deepEqual(await store.list(), []);
    assert.deepEqual(readdirSync(join(home, "manifests")), [], "empty manifest folders are removed");
    assert.deepEqual(temporaryNames(home), []);
  });

  test("importing the same file again (same or other name) reuses the blob", async () => {
    const { store, home, inputs } = fixture();
    const file = writeSmallGguf(join(inputs, "a.gguf"), 1);
    await store.import(file, "a");
    const again = await store.import(file, "a");
    assert.equal(again.replaced, true);
    assert.equal(again.files[0]!.reused, true);
    const other = await store.import(file, "b:v1");
    assert.equal(other.replaced, false);
    assert.equal(other.files[0]!.reused, true);
    assert.deepEqual(blobNames(home), [sha256(file).replace(":", "-")]);
    assert.equal((await store.list()).length, 2);
    assert.deepEqual(temporaryNames(home), []);
  });

  test("importing over a name replaces it and frees the old blob when nothing else uses it", async () => {
    const { store, home, inputs } = fixture();
    const a = writeSmallGguf(join(inputs, "a.gguf"), 1);
    const b = writeSmallGguf(join(inputs, "b.gguf"), 2);
    await store.import(a, "model");
    await store.import(a, "keep");
    await store.import(b, "model");
    assert.deepEqual(blobNames(home), [sha256(a), sha256(b)].map((d) => d.replace(":", "-")).sort());
    await store.import(b, "keep");
    assert.deepEqual(blobNames(home), [sha256(b).replace(":", "-")]);
    assert.equal((await store.show("model")).manifest.files[0]!.digest, sha256(b));
  });

  test("copying onto an existing name replaces it and frees its old blob", async () => {
    const { store, home, inputs } = fixture();
    const a = writeSmallGguf(join(inputs, "a.gguf"), 1);
    const b = writeSmallGguf(join(inputs, "b.gguf"), 2);
    await store.import(a, "a");
    await store.import(b, "b");
    await store.copy("a", "b");
    assert.deepEqual(blobNames(home), [sha256(a).replace(":", "-")]);
    assert.equal((await store.show("b")).manifest.files[0]!.digest, sha256(a));
  });

  test("names compare case-insensitively and keep the case they were last given", async () => {
    const { store, inputs } = fixture();
    const file = writeSmallGguf(join(inputs, "a.gguf"), 1);
    await store.import(file, "Demo:Tiny");
    assert.equal((await store.show("demo:tiny")).name, "Demo:Tiny");
    const again = await store.import(file, "DEMO:tiny");
    assert.equal(again.replaced, true);
    assert.deepEqual(
      (await store.list()).map((entry) => entry.name),
      ["DEMO:tiny"],
    );
  });

  test("a split model is imported whole, in shard order, from any of its shards", async () => {
    const { store, home, inputs } = fixture();
    const shards = writeSplitGguf(inputs, "big", 3, 7);
    const imported = await store.import(shards[1]!, "big");
    assert.deepEqual(
      imported.files.map((file) => file.filename),
      ["big-00001-of-00003.gguf", "big-00002-of-00003.gguf", "big-00003-of-00003.gguf"],
    );
    assert.deepEqual(
      imported.files.map((file) => file.digest),
      shards.map(sha256),
    );
    assert.equal(imported.summary.splitCount, 3);
    assert.equal(imported.summary.tensorCount, 3);
    const resolved = await store.resolve("big");
    assert.deepEqual(
      resolved,
      shards.map((shard) => join(home, "blobs", sha256(shard).replace(":", "-"))),
    );
    const [entry] = await store.list();
    assert.equal(
      entry!.size,
      shards.reduce((total, shard) => total + statSync(shard).size, 0),
    );
  });

  test("a split model with a missing shard is refused, naming the shard", async () => {
    const { store, home, inputs } = fixture();
    const shards = writeSplitGguf(inputs, "gap", 3);
    rmSync(shards[2]!);
    await assert.rejects(store.import(shards[0]!, "gap"), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.equal(error.code, "missing_shard");
      assert.match(error.message, /missing shard 3 of 3: .*gap-00003-of-00003\.gguf does not exist/);
      return true;
    });
    assert.equal(existsSync(home), false, "nothing was written");
  });

  test("shards whose split metadata disagrees with their names are refused", async () => {
    const { store, inputs } = fixture();
    const shards = writeSplitGguf(inputs, "odd", 2);
    // A single-file model renamed to look like shard 2.
    writeSmallGguf(shards[1]!, 3);
    await assert.rejects(
      store.import(shards[0]!, "odd"),
      /odd-00002-of-00002\.gguf is named as shard 2 of 2, but its metadata says it is not a split model/,
    );
    // A real shard renamed so that its siblings cannot be found.
    const lonely = join(inputs, "lonely.gguf");
    renameSync(shards[0]!, lonely);
    await assert.rejects(store.import(lonely, "odd"), /is shard 1 of 2 of a split model, but its name does not end in/);
  });

  test("a bad name is refused before the file is touched; a bad file before anything is written", async () => {
    const { store, home, inputs } = fixture();
    await assert.rejects(store.import(join(inputs, "missing.gguf"), "../escape"), /invalid model name "\.\.\/escape"/);
    const junk = join(inputs, "junk.gguf");
    writeFileSync(junk, "this is not a GGUF file at all");
    await assert.rejects(store.import(junk, "junk"), ModelFileError);
    await assert.rejects(store.import(join(inputs, "missing.gguf"), "missing"), /no such file/);
    assert.equal(existsSync(home), false);
  });

  test("--link hard-links the file when it is on the same file system, and still hashes it", async () => {
    const { store, home, inputs } = fixture();
    const file = writeSmallGguf(join(inputs, "a.gguf"), 4);
    const imported = await store.import(file, "linked", { link: true });
    assert.equal(imported.files[0]!.linked, true);
    assert.equal(imported.files[0]!.digest, sha256(file));
    assert.equal(statSync(imported.files[0]!.path).ino, statSync(file).ino);
    await store.remove("linked");
    assert.ok(existsSync(file), "removing the model leaves the original file");
    assert.deepEqual(blobNames(home), []);
  });

  test("show, resolve, copy and remove of an unknown name are NotFoundError", async () => {
    const { store } = fixture();
    const attempts = [
      () => store.show("nope"),
      () => store.resolve("nope"),
      () => store.copy("nope", "x"),
      () => store.remove("nope"),
    ];
    for (const attempt of attempts) {
      await assert.rejects(attempt, (error: unknown) => {
        assert.ok(error instanceof NotFoundError);
        assert.match(error.message, /model "nope:latest" is not in the store/);
        return true;
      });
    }
  });

  test("a missing blob makes resolve fail with a clear error", async () => {
    const { store, home, inputs } = fixture();
    const file = writeSmallGguf(join(inputs, "a.gguf"), 5);
    await store.import(file, "a");
    rmSync(join(home, "blobs", sha256(file).replace(":", "-")));
    await assert.rejects(store.resolve("a"), /model "a:latest" is missing its file .*; import it again/);
  });

  test("a hand-edited manifest cannot point outside the store, and keeps every blob safe from pruning", async () => {
    const { store, home, inputs } = fixture();
    const file = writeSmallGguf(join(inputs, "a.gguf"), 6);
    await store.import(file, "a");
    const manifestPath = join(home, "manifests", "_", "_", "a", "latest.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    manifest.files[0].digest = "sha256-../../../../etc/passwd";
    writeFileSync(manifestPath, JSON.stringify(manifest));
    await assert.rejects(store.show("a"), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.equal(error.code, "corrupt_manifest");
      assert.match(error.message, /files\.0\.digest/);
      return true;
    });
    assert.deepEqual(await store.list(), []);
    await store.prune();
    assert.equal(blobNames(home).length, 1, "an unreadable manifest might reference any blob, so none is pruned");
    // Removing the broken name is how a person recovers; then the blob it held is freed.
    const removed = await store.remove("a");
    assert.deepEqual(removed, { name: "a:latest", removedBlobs: [sha256(file)] });
    assert.deepEqual(blobNames(home), []);
  });

  test("importing over a corrupt manifest replaces it", async () => {
    const { store, home, inputs } = fixture();
    const file = writeSmallGguf(join(inputs, "a.gguf"), 9);
    await store.import(file, "a");
    writeFileSync(join(home, "manifests", "_", "_", "a", "latest.json"), "{ truncated");
    await assert.rejects(store.show("a"), /is not valid JSON/);
    const again = await store.import(file, "a");
    assert.equal(again.replaced, true);
    assert.equal((await store.show("a")).manifest.files[0]!.digest, sha256(file));
  });

  test("--link follows a symbolic link to the real file", async () => {
    const { store, inputs } = fixture();
    const file = writeSmallGguf(join(inputs, "real.gguf"), 10);
    const link = join(inputs, "link.gguf");
    symlinkSync(file, link);
    const imported = await store.import(link, "a", { link: true });
    assert.equal(lstatSync(imported.files[0]!.path).isSymbolicLink(), false);
    assert.equal(statSync(imported.files[0]!.path).ino, statSync(file).ino);
  });

  test("a manifest whose name does not match its place is refused", async () => {
    const { store, home, inputs } = fixture();
    const file = writeSmallGguf(join(inputs, "a.gguf"), 6);
    await store.import(file, "a");
    const manifestPath = join(home, "manifests", "_", "_", "a", "latest.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    manifest.name = "b:latest";
    writeFileSync(manifestPath, JSON.stringify(manifest));
    await assert.rejects(store.show("a"), /names the model "b:latest", which does not belong there/);
  });

  test("prune removes unreferenced blobs and temporary files of dead processes, and nothing it did not make", async () => {
    const { store, home, inputs } = fixture();
    const file = writeSmallGguf(join(inputs, "a.gguf"), 8);
    await store.import(file, "a");
    const orphan = `sha256-${"e".repeat(64)}`;
    writeFileSync(join(home, "blobs", orphan), "orphan");
    writeFileSync(join(home, "blobs", "notes.txt"), "not ours");
    // Linux pids stay below 2^22, so this writer is certainly gone.
    const abandoned = `99999999-${"0".repeat(16)}.blob`;
    const live = `${process.pid}-${"1".repeat(16)}.blob`;
    for (const name of [abandoned, live, "unrelated"]) writeFileSync(join(home, "tmp", name), "x");
    const swept = await store.prune();
    assert.deepEqual(swept, { temporaryFiles: [abandoned], blobs: [`sha256:${"e".repeat(64)}`] });
    assert.deepEqual(blobNames(home), ["notes.txt", sha256(file).replace(":", "-")].sort());
    assert.deepEqual(temporaryNames(home).sort(), [live, "unrelated"].sort());
  });
});
