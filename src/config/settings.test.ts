import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { loadConfig } from "./config.js";
import { checkFileConfig, loadSettings } from "./fileConfig.js";
import { type Setting, settingNames, settings } from "./settings.js";

const rows = settingNames.map((name) => ({ name, ...(settings[name] as unknown as Setting) }));
const fileRows = rows.filter((row) => row.file !== undefined);

/** freehold.yaml text that sets one dotted key to `value` (a YAML flow value). */
function yamlSetting(key: string, value: string): string {
  const parts = key.split(".");
  return parts
    .map((part, depth) => `${"  ".repeat(depth)}${part}:${depth === parts.length - 1 ? ` ${value}` : ""}`)
    .join("\n");
}

test("each setting is spelled once: one variable, one file key, a description and a default people can read", () => {
  const unique = (values: string[]) => assert.equal(new Set(values).size, values.length, values.join(", "));
  unique(rows.map((row) => row.env));
  unique(fileRows.map((row) => row.file!));
  for (const row of rows) {
    assert.match(row.env, /^(FREEHOLD|HF)_[A-Z_]+$/, row.name);
    assert.ok(row.description.length > 20 && row.shown.length > 0, row.name);
  }
});

test("every file key is read from freehold.yaml: a valid value reaches Config, beaten by its variable", () => {
  const directory = mkdtempSync(join(tmpdir(), "freehold-settings-"));
  try {
    const path = join(directory, "freehold.yaml");
    const cases: Record<string, [string, unknown, string, unknown]> = {
      // file key: [YAML value, what Config holds, the variable's value, what Config holds then]
      "server.port": ["8000", 8000, "9000", 9000],
      "server.keep_alive": ['"2m"', 120, "30", 30],
      "server.memory_budget": ['"1GiB"', 1024 ** 3, "2048", 2048],
      "server.flash_attention": ["false", "off", "on", "on"],
      "server.allowed_hosts": ["[a.example]", ["a.example"], "b.example, c.example", ["b.example", "c.example"]],
      offline: ["true", true, "0", false],
      "database.url": ['"postgres://db/x"', "postgres://db/x", "postgresql://other/y", "postgresql://other/y"],
      "images.fetch": [
        '["*.example.com", "cdn.example.org:8443"]',
        ["*.example.com", "cdn.example.org:8443"],
        "*",
        ["*"],
      ],
      "images.fetch_timeout": ["2.5", 2.5, "10", 10],
    };
    for (const [key, [yaml, fromFile, variable, fromVariable]] of Object.entries(cases)) {
      const row = fileRows.find((candidate) => candidate.file === key)!;
      writeFileSync(path, `${yamlSetting(key, yaml)}\n`);
      const env = { FREEHOLD_HOME: directory };
      assert.deepEqual(loadSettings({ configPath: path }, env).config[row.name], fromFile, key);
      const beaten = loadSettings({ configPath: path }, { ...env, [row.env]: variable }).config[row.name];
      assert.deepEqual(beaten, fromVariable, `${row.env} beats ${key}`);
    }
    writeFileSync(path, "offline: true\n");
    assert.equal(loadSettings({ configPath: path }, { FREEHOLD_HOME: directory }).offline, true);
    assert.equal(loadSettings({ configPath: path, offline: false }, { FREEHOLD_HOME: directory }).offline, false);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
});

test("a wrong type in the file is refused for every file key, naming the file, the line and the key", () => {
  for (const row of fileRows) {
    const text = `# settings\n${yamlSetting(row.file!, "{ nested: 1 }")}\n`;
    const { problems } = checkFileConfig(text, "freehold.yaml", {});
    const line = row.file!.split(".").length + 1;
    assert.ok(
      problems.some((problem) => problem.startsWith(`freehold.yaml:${line}: ${row.file}: `)),
      `${row.file}: ${problems.join(" / ")}`,
    );
  }
});

test("out of range, in the file or the environment, says what is allowed", () => {
  const file = (text: string) => checkFileConfig(text, "freehold.yaml", {}).problems.join("\n");
  assert.match(file("server:\n  parallel: 100\n"), /freehold\.yaml:2: server\.parallel: .*<=64/);
  assert.match(file("server:\n  port: 70000\n"), /freehold\.yaml:2: server\.port: .*<=65535/);
  assert.match(file("server:\n  kv_cache_type: q5_0\n"), /server\.kv_cache_type: must be f16, q8_0 or q4_0/);
  assert.match(file('database:\n  url: "mysql://x"\n'), /database\.url: must be a postgres:\/\//);
  assert.match(
    file("images:\n  fetch: [http://a.example]\n"),
    /images\.fetch\[0\]: each image host is host, \*\.domain or \*/,
  );
  assert.match(file("images:\n  fetch: [a.example:70000]\n"), /images\.fetch\[0\]: a port is 1 to 65535/);
  assert.throws(
    () => loadConfig({}, { FREEHOLD_IMAGE_FETCH: "a.example/x" }),
    /FREEHOLD_IMAGE_FETCH=.*each image host/,
  );
  assert.throws(() => loadConfig({}, { FREEHOLD_IMAGE_FETCH: "user@a.example" }), /each image host/);
  assert.throws(() => loadConfig({}, { FREEHOLD_PARALLEL: "100" }), /FREEHOLD_PARALLEL="100": .*<=64/);
  assert.throws(() => loadConfig({}, { FREEHOLD_CONTEXT_SIZE: "8" }), /FREEHOLD_CONTEXT_SIZE="8": .*>=64/);
  assert.throws(() => loadConfig({}, { FREEHOLD_GPU_LAYERS: "most" }), /FREEHOLD_GPU_LAYERS="most": must be auto, max/);
  assert.throws(() => loadConfig({}, { FREEHOLD_THREADS: "2.5" }), /FREEHOLD_THREADS="2.5": must be a whole number/);
  assert.throws(() => loadConfig({}, { FREEHOLD_PORT: "true" }), /FREEHOLD_PORT="true"/);
});

test("an unknown key in the server section is refused with the spelling it was probably meant as", () => {
  const problems: string[] = checkFileConfig("server:\n  pott: 8000\n  kv_cache: f16\n", "freehold.yaml", {}).problems;
  assert.ok(problems.includes("freehold.yaml:2: server.pott: unknown field; did you mean port?"), problems.join("\n"));
  assert.ok(problems.some((problem) => /^freehold\.yaml:3: server\.kv_cache: unknown field/.test(problem)));
});

test("FREEHOLD_OFFLINE: yes and no in the usual spellings; anything else is an error, never a silent 'no'", () => {
  for (const yes of ["1", "true", "YES", "on"]) assert.equal(loadConfig({}, { FREEHOLD_OFFLINE: yes }).offline, true);
  for (const no of ["0", "false", "no", "off"]) assert.equal(loadConfig({}, { FREEHOLD_OFFLINE: no }).offline, false);
  for (const bad of ["enabled", "2", "y"])
    assert.throws(() => loadConfig({}, { FREEHOLD_OFFLINE: bad }), new RegExp(`FREEHOLD_OFFLINE="${bad}": must be 1`));
});

test("a secret's value is never quoted in an error", () => {
  assert.throws(
    () => loadConfig({ apiKey: "" }, {}),
    (error: Error) => /apiKey \(value not shown\)/.test(error.message),
  );
});
