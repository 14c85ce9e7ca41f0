import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { runCli } from "./helpers/cli.js";
import { writeSplitGguf } from "./helpers/gguf.js";
import { storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";

const directory = temporaryDirectory("freehold-store-cli-");
after(directory.dispose);
let counter = 0;

/** A CLI bound to a fresh, empty home. */
function freshHome(): { home: string; cli: (...args: string[]) => ReturnType<typeof runCli> } {
  const home = join(directory.path, `home-${counter++}`);
  return { home, cli: (...args) => runCli(["--home", home, ...args]) };
}

const sha256 = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

describe("freehold import, list, show, cp, rm", () => {
  test("import, cp, create and rm from the CLI are in the audit trail, which still verifies", async () => {
    const { cli } = freshHome();
    const model = join(directory.path, "audited.gguf");
    writeSyntheticModel(model, { preset: "tiny", quant: "q8_0", seed: 5 });
    assert.equal((await cli("import", model, "--name", "audited")).code, 0);
    assert.equal((await cli("cp", "audited", "audited-copy")).code, 0);
    const profile = join(directory.path, "audited.yaml");
    writeFileSync(profile, "from: audited\nsystem: Be brief.\n");
    const created = await cli("create", "audited-brief", "-f", profile);
    assert.equal(created.code, 0, created.stderr);
    assert.equal((await cli("rm", "audited-copy")).code, 0);
    const listed = await cli("audit", "list", "--format", "json");
    const entries = (JSON.parse(listed.stdout) as { actor: string; action: string; target: string }[]).filter(
      (entry) => !entry.action.startsWith("audit."), // the trail's own bookkeeping (audit.keyed, first)
    );
    assert.deepEqual(
      entries.map((entry) => [entry.action, entry.target]),
      [
        ["model.import", "audited:latest"],
        ["model.copy", "audited-copy:latest"],
        ["model.create", "audited-brief:latest"],
        ["model.delete", "audited-copy:latest"],
      ],
    );
    for (const entry of entries) assert.match(entry.actor, /^cli:/);
    const verified = await cli("audit", "verify");
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
  });

  test("round-trip on the real tiny model", async (t) => {
    if (storiesModelMissing) return t.skip(storiesModelMissing);
    const { home, cli } = freshHome();
    const hex = sha256(storiesModelPath);

    const imported = await cli("import", storiesModelPath, "--name", "stories");
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /^imported stories:latest\n/);
    assert.match(imported.stdout, new RegExp(`^sha256:${hex}  stories260K\\.gguf  1\\.2 MB  copied$`, "m"));

    const listed = await cli("list");
    assert.equal(listed.code, 0, listed.stderr);
    const [header, row, ...rest] = listed.stdout.trimEnd().split("\n");
    assert.match(header!, /^NAME\s+ID\s+SIZE\s+PARAMETERS\s+QUANTIZATION\s+MODIFIED$/);
    assert.match(
      row!,
      new RegExp(`^stories:latest\\s+${hex.slice(0, 12)}\\s+1\\.2 MB\\s+292\\.8K\\s+F32\\s+just now$`),
    );
    assert.deepEqual(rest, []);
    assert.ok(!listed.stdout.includes("\u001b["), "no colour codes when piped");

    const shown = await cli("show", "stories");
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^Model stories:latest$/m);
    assert.match(shown.stdout, /^ {2}architecture\s+llama$/m);
    assert.match(shown.stdout, /^ {2}parameters\s+292\.8K \(292,800\)$/m);
    assert.match(shown.stdout, new RegExp(`sha256:${hex}`));
    assert.match(shown.stdout, /^Chat template\n {2}none/m);
    assert.doesNotMatch(shown.stdout, /synthetic/);

    const json = await cli("show", "stories", "--json");
    assert.equal(json.code, 0, json.stderr);
    const parsed = JSON.parse(json.stdout);
    assert.equal(parsed.name, "stories:latest");
    assert.equal(parsed.files[0].digest, `sha256:${hex}`);
    assert.deepEqual(parsed.blobPaths, [join(home, "blobs", `sha256-${hex}`)]);
    assert.equal(parsed.summary.contextLength, 2048);

    const copied = await cli("cp", "stories", "tiny/stories:260k");
    assert.equal(copied.code, 0, copied.stderr);
    assert.equal(copied.stdout, "copied stories:latest to tiny/stories:260k\n");
    const aliased = await cli("ls");
    assert.match(aliased.stdout, /^tiny\/stories:260k\s/m);
    assert.match(aliased.stdout, /^stories:latest\s/m);

    const removed = await cli("rm", "stories", "tiny/stories:260k");
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal(removed.stdout, "deleted stories:latest\ndeleted tiny/stories:260k\n");
    assert.equal(existsSync(join(home, "blobs", `sha256-${hex}`)), false);
    const empty = await cli("list");
    assert.equal(empty.stdout.trimEnd().split("\n").length, 1, "only the header is left");
  });

  test("a synthetic model says so in import, list and show", async () => {
    const { cli } = freshHome();
    const file = join(directory.path, "tiny.gguf");
    writeSyntheticModel(file, { preset: "tiny", quant: "f32", seed: 1 });
    const imported = await cli("import", file, "--name", "demo:tiny");
    assert.equal(imported.code, 0, imported.stderr);
    assert.match(imported.stdout, /synthetic model \(random weights\)/);
    assert.match((await cli("list")).stdout, /^demo:tiny\s.*\(synthetic\)/m);
    const shown = await cli("show", "demo:tiny");
    assert.match(shown.stdout, /synthetic \(random weights\)/);
    assert.match(shown.stdout, /^Chat template\n {2}\{% for message in messages %\}/m);
  });

  test("a split model imports as one model and shows its shards in order", async () => {
    const { cli } = freshHome();
    const inputs = join(directory.path, `split-${counter++}`);
    mkdirSync(inputs);
    const shards = writeSplitGguf(inputs, "model", 2);
    const imported = await cli("import", shards[0]!, "--name", "split");
    assert.equal(imported.code, 0, imported.stderr);
    const lines = imported.stdout.trimEnd().split("\n");
    assert.equal(lines.length, 3);
    assert.match(lines[1]!, new RegExp(`^sha256:${sha256(shards[0]!)}  model-00001-of-00002\\.gguf`));
    assert.match(lines[2]!, new RegExp(`^sha256:${sha256(shards[1]!)}  model-00002-of-00002\\.gguf`));
    assert.match((await cli("show", "split")).stdout, /^Files \(2 shards, in order\)$/m);
  });

  test("mistakes give one clear line on stderr and exit 1", async (t) => {
    if (storiesModelMissing) return t.skip(storiesModelMissing);
    const { home, cli } = freshHome();
    const cases: [string[], RegExp][] = [
      [
        ["import", storiesModelPath, "--name", "../escape"],
        /^freehold: invalid model name "\.\.\/escape": "\.\." is not allowed/,
      ],
      [
        ["import", join(directory.path, "missing.gguf"), "--name", "x"],
        /^freehold: cannot read model file .*no such file/,
      ],
      [["show", "nope"], /^freehold: model "nope:latest" is not in the store/],
      [["cp", "nope", "other"], /^freehold: model "nope:latest" is not in the store/],
      [["rm", "nope"], /^freehold: model "nope:latest" is not in the store/],
      [["import", storiesModelPath], /required option '--name <name>' not specified/],
    ];
    for (const [args, pattern] of cases) {
      const result = await cli(...args);
      // A missing required option is a usage error (exit 2, issue 20); the others are failed operations (1).
      const usage = args.length === 2 && args[0] === "import";
      assert.equal(result.code, usage ? 2 : 1, `${args.join(" ")}: ${result.stdout}`);
      assert.match(result.stderr, pattern);
    }
    const manifests = join(home, "manifests");
    const written = existsSync(manifests) ? readdirSync(manifests, { recursive: true }) : [];
    assert.deepEqual(written, [], "no failed command wrote a model");
  });

  test("rm removes what it can and reports every name it could not", async (t) => {
    if (storiesModelMissing) return t.skip(storiesModelMissing);
    const { cli } = freshHome();
    assert.equal((await cli("import", storiesModelPath, "--name", "a")).code, 0);
    const result = await cli("rm", "missing", "a", "bad name");
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "deleted a:latest\n");
    assert.match(
      result.stderr,
      /^freehold: 2 models were not removed:\n {2}model "missing:latest".*\n {2}invalid model name "bad name"/,
    );
  });
});
