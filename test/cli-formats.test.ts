import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { runCli } from "./helpers/cli.js";
import { temporaryDirectory } from "./helpers/paths.js";

// Issue 20 items 4 and 7: one output scheme everywhere (data on stdout, parseable), and `config check FILE`.

const directory = temporaryDirectory("freehold-cli-formats-");
after(directory.dispose);
const home = join(directory.path, "home");
const cli = (...args: string[]) => runCli(["--home", home, ...args]);

/** Parses CSV as RFC 4180 writes it (quoted cells may hold commas, quotes and newlines). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted && c === '"' && text[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (!quoted && c === ",") {
      row.push(cell);
      cell = "";
    } else if (!quoted && c === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
    } else {
      cell += c;
    }
  }
  return rows;
}

describe("--json / --format on every command that prints data (item 4)", () => {
  test("list, show, verify, keys list, audit list, usage, doctor, config check: JSON and CSV that parse", async () => {
    const model = join(directory.path, "tiny.gguf");
    writeSyntheticModel(model, { preset: "tiny", quant: "q8_0", seed: 3 });
    assert.equal((await cli("import", model, "--name", "tiny")).code, 0);
    const key = await cli("keys", "create", "--name", "alice", "--models", "tiny,other");
    assert.equal(key.code, 0, key.stderr);

    const listed = JSON.parse((await cli("list", "--json")).stdout) as { models: { name: string; size: number }[] };
    assert.deepEqual(
      listed.models.map((m) => m.name),
      ["tiny:latest"],
    );
    assert.ok(listed.models[0]!.size > 0);
    assert.deepEqual(JSON.parse((await cli("list", "--format", "json")).stdout), listed);
    const csv = parseCsv((await cli("list", "--format", "csv")).stdout);
    assert.deepEqual(csv[0], ["NAME", "ID", "SIZE", "PARAMETERS", "QUANTIZATION", "MODIFIED"]);
    assert.equal(csv[1]![0], "tiny:latest");

    const shown = JSON.parse((await cli("show", "tiny", "--json")).stdout) as { name: string; blobPaths: string[] };
    assert.equal(shown.name, "tiny:latest");
    assert.equal(shown.blobPaths.length, 1);

    const verified = await cli("verify", "--json");
    assert.equal(verified.code, 0, verified.stderr);
    assert.deepEqual(JSON.parse(verified.stdout), { ok: true, lockfile: null, checked: ["tiny:latest"], problems: [] });

    const keys = parseCsv((await cli("keys", "list", "--format", "csv")).stdout);
    assert.deepEqual(
      keys[1]!.slice(0, 4),
      ["alice", keys[1]![1], "", "tiny,other"],
      "a cell with a comma survives CSV",
    );
    assert.equal((JSON.parse((await cli("keys", "list", "--json")).stdout) as unknown[]).length, 1);

    const audit = JSON.parse((await cli("audit", "list", "--json")).stdout) as { action: string }[];
    assert.deepEqual(
      audit.map((entry) => entry.action).filter((action) => action !== "audit.keyed"),
      ["model.import", "key.create"],
    );
    assert.equal(parseCsv((await cli("audit", "list", "--format", "csv")).stdout)[0]![0], "SEQ");

    assert.deepEqual(JSON.parse((await cli("usage", "--json")).stdout), []);
    const doctor = JSON.parse((await cli("doctor", "--json")).stdout) as { home: string; config: null };
    assert.equal(doctor.home, home);
    assert.equal(doctor.config, null);
    assert.deepEqual(JSON.parse((await cli("config", "check", "--json")).stdout), {
      ok: true,
      file: null,
      offline: false,
      config: null,
    });
  });

  test("a format a command cannot print, or --json against --format, is a usage error naming the choices", async () => {
    for (const args of [
      ["list", "--format", "xml"],
      ["show", "x", "--format", "csv"],
      ["verify", "--format", "yaml"],
      ["doctor", "--format", "csv"],
      ["list", "--json", "--format", "csv"],
    ]) {
      const result = await cli(...args);
      assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
      assert.equal(result.stdout, "");
      assert.match(result.stderr, /--format must be|disagree/);
    }
  });
});

describe("config check FILE (item 7)", () => {
  test("takes the file as an argument, reports every problem at once, with did-you-mean", async () => {
    const path = join(directory.path, "freehold.yaml");
    writeFileSync(
      path,
      [
        "port: 8080",
        "server:",
        "  threds: 2",
        "providers:",
        "  cloud:",
        "    kind: openai",
        "    base_url: https://api.example.com/v1",
        // biome-ignore lint/suspicious/noTemplateCurlyInString: freehold.yaml's own ${ENV} reference
        "    api_key: ${FREEHOLD_TEST_UNSET_KEY}",
        "routes:",
        "  smart:",
        "    targets:",
        "      - { provider: cloud, model: m, wieght: 2 }",
        "    retires: 2",
        "",
      ].join("\n"),
    );
    const result = await cli("config", "check", path);
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split("\n");
    assert.deepEqual(lines, [
      `${path}:1: port: unknown top-level field; port belongs under server: (indent it there)`,
      `${path}:3: server.threds: unknown field; did you mean threads?`,
      `${path}:8: providers.cloud.api_key: the environment variable FREEHOLD_TEST_UNSET_KEY is not set (referenced as \${FREEHOLD_TEST_UNSET_KEY})`,
      `${path}:12: routes.smart.targets[0].wieght: unknown field; did you mean weight?`,
      `${path}:13: routes.smart.retires: unknown field; did you mean retries?`,
      "5 problems: the server would refuse to start",
    ]);
    const json = await cli("config", "check", path, "--json");
    assert.equal(json.code, 1);
    assert.equal((JSON.parse(json.stdout) as { problems: string[] }).problems.length, 5);

    writeFileSync(path, "providers:\n  cloud: { kind: openai, base_url: https://x.example, api_key: sk-secret }\n");
    const good = await cli("config", "check", path, "--json");
    assert.equal(good.code, 0, good.stderr);
    assert.doesNotMatch(good.stdout, /sk-secret/, "a resolved secret is never printed");
    assert.match(good.stdout, /"api_key": "\(set\)"/);
  });
});
