import assert from "node:assert/strict";
import { appendFileSync, copyFileSync, readdirSync, realpathSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { ModelStore } from "../src/store/index.js";
import { runCli } from "./helpers/cli.js";
import { temporaryDirectory } from "./helpers/paths.js";

/**
 * `freehold import MODEL --projector MMPROJ --link`: both files are referenced where they are (no copy in the
 * store), both are checked the same way on load (size and modification time) and by `freehold verify` (re-hashed),
 * and `show` lists the projector at its own path.
 */

const files = temporaryDirectory("freehold-link-projector-");
after(() => files.dispose());
const model = join(files.path, "vision.gguf");
writeSyntheticModel(model, { preset: "tiny-vision", quant: "f32", seed: 5 });
const projector = join(files.path, "vision-mmproj.gguf");

function blobCount(home: string): number {
  try {
    return readdirSync(join(home, "blobs")).filter((name) => name.startsWith("sha256")).length;
  } catch {
    return 0;
  }
}

test("--link with --projector references both files; show, load and verify use the projector where it is", async (t) => {
  const home = temporaryDirectory();
  t.after(home.dispose);
  const env = { ...process.env, FREEHOLD_HOME: home.path };
  const imported = await runCli(["import", model, "--name", "vision", "--link", "--projector", projector], { env });
  assert.equal(imported.code, 0, imported.stderr);
  assert.match(imported.stdout, new RegExp(`vision\\.gguf .* referenced at ${realpathSync(model)}`));
  assert.match(
    imported.stdout,
    new RegExp(`vision-mmproj\\.gguf .* vision projector, referenced at ${realpathSync(projector)}`),
  );
  assert.equal(blobCount(home.path), 0, "nothing was copied into the store");

  const store = new ModelStore({ home: home.path });
  const details = await store.show("vision");
  assert.equal(details.projectorPath, realpathSync(projector));
  assert.equal(details.manifest.projector?.link?.path, realpathSync(projector));
  const shown = await runCli(["show", "vision"], { env });
  assert.match(shown.stdout, /Vision projector/);
  assert.ok(shown.stdout.includes(realpathSync(projector)), shown.stdout);

  const verified = await runCli(["verify"], { env });
  assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  assert.deepEqual(
    (await store.verify("vision")).map((file) => [file.filename, file.actual === file.expected]),
    [
      ["vision.gguf", true],
      ["vision-mmproj.gguf", true],
    ],
  );
  assert.equal((await store.resolve("vision")).length, 1);

  // The projector changes after the import: loading refuses it (as a changed model file is), verify says which.
  appendFileSync(projector, Buffer.from([0]));
  await assert.rejects(store.resolve("vision"), (error: Error & { code?: string }) => {
    assert.equal(error.code, "linked_file_changed");
    assert.ok(error.message.includes(realpathSync(projector)));
    return true;
  });
  const changed = await runCli(["verify"], { env });
  assert.equal(changed.code, 1);
  assert.match(
    changed.stdout,
    /FAIL vision:latest: vision-mmproj\.gguf: .* hashes to sha256:[0-9a-f]+, but the manifest says/,
  );
});

test("a touched projector (same bytes, new time) is refused on load too; a non-projector is refused at import", async (t) => {
  const home = temporaryDirectory();
  t.after(home.dispose);
  const env = { ...process.env, FREEHOLD_HOME: home.path };
  const fresh = join(files.path, "fresh-mmproj.gguf");
  writeSyntheticModel(join(files.path, "fresh.gguf"), { preset: "tiny-vision", quant: "f32", seed: 6 });
  const imported = await runCli(["import", model, "--name", "v2", "--link", "--projector", fresh], { env });
  assert.equal(imported.code, 0, imported.stderr);
  const store = new ModelStore({ home: home.path });
  await store.resolve("v2");
  utimesSync(fresh, new Date(), new Date(Date.now() + 5000));
  await assert.rejects(store.resolve("v2"), /changed after it was imported by reference/);

  const notProjector = join(files.path, "not-a-projector.gguf");
  copyFileSync(model, notProjector);
  const refused = await runCli(["import", model, "--name", "v3", "--link", "--projector", notProjector], { env });
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /is not a vision projector/);
  await assert.rejects(store.show("v3"));
});
