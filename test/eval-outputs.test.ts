import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { type FakeCloud, startFakeCloud } from "./helpers/fakeCloud.js";
import { temporaryDirectory } from "./helpers/paths.js";

/**
 * `freehold eval` as CI runs it: a paid model (a fake on loopback) whose answers are fixed per prompt, JSON-schema
 * cases that the hand-written checker scored wrongly (Ajv now scores them right), and the JUnit XML and CSV files.
 */
const answers: Record<string, string> = {
  price: '{"price": 0.35}',
  money: '{"price": 0.3}',
  stock: '{"left": 5}',
  tags: '{"tags": ["a", "a"]}',
  email: '{"email": "nobody"}',
  either: '{"n": 3}',
  order: '{"b": 2, "a": 1}',
  plain: "hello & <goodbye>",
};

const suite = `
name: ci-gate
threshold: 0.5
cases:
  - id: price-multiple
    prompt: price
    assert: [{ type: json-schema, value: { properties: { price: { multipleOf: 0.1 } } } }]
  - id: money-multiple
    prompt: money
    assert: [{ type: json-schema, value: { properties: { price: { multipleOf: 0.1 } } } }]
  - id: stock-exclusive
    prompt: stock
    assert: [{ type: json-schema, value: { properties: { left: { exclusiveMaximum: 5 } } } }]
  - id: tags-unique
    prompt: tags
    assert: [{ type: json-schema, value: { properties: { tags: { uniqueItems: true } } } }]
  - id: email-format
    prompt: email
    assert: [{ type: json-schema, value: { properties: { email: { format: email } } } }]
  - id: either-one
    prompt: either
    assert: [{ type: json-schema, value: { properties: { n: { oneOf: [{ type: integer }, { minimum: 0 }] } } } }]
  - id: key-order
    prompt: order
    assert: [{ type: json-schema, value: { const: { a: 1, b: 2 } } }]
  - id: not-json
    prompt: plain
    assert: [{ type: contains, value: "&" }, { type: json-schema, value: { not: { type: string } } }]
`;

describe("freehold eval for CI: Ajv's verdicts, --junit and --csv", () => {
  const home = temporaryDirectory("freehold-eval-ci-");
  const env = { FREEHOLD_HOME: home.path, FREEHOLD_LOG_LEVEL: "warn" };
  let cloud: FakeCloud;
  before(async () => {
    cloud = await startFakeCloud({
      answer: (prompt) => answers[prompt.trim()] ?? "unexpected prompt",
      judge: () => true,
    });
    writeFileSync(
      join(home.path, "freehold.yaml"),
      `providers:\n  cloud:\n    kind: openai\n    base_url: ${cloud.base}\n`,
    );
    writeFileSync(join(home.path, "suite.yaml"), suite);
  });
  after(async () => {
    await cloud?.close();
    home.dispose();
  });

  test("json-schema cases are scored by Ajv, and the JUnit XML and CSV say which failed and why", async () => {
    const junit = join(home.path, "eval.xml");
    const csv = join(home.path, "answers.csv");
    const result = await runCli(
      [
        "eval",
        join(home.path, "suite.yaml"),
        "--models",
        "cloud/gpt-4o-mini",
        "--junit",
        junit,
        "--csv",
        csv,
        "--json",
      ],
      { env, timeoutMs: 60_000 },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`junit: ${junit.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
    const summary = JSON.parse(result.stdout) as {
      models: { passes: number; answers: number }[];
      cases: { caseId: string; models: Record<string, { passes: number; failures: string[] }> }[];
    };
    const verdicts = Object.fromEntries(
      summary.cases.map((item) => [item.caseId, item.models["cloud/gpt-4o-mini"]!.passes === 1]),
    );
    // The hand-written checker passed all eight; only money-multiple (0.3 of 0.1) and key-order truly pass.
    assert.deepEqual(verdicts, {
      "price-multiple": false,
      "money-multiple": true,
      "stock-exclusive": false,
      "tags-unique": false,
      "email-format": false,
      "either-one": false,
      "key-order": true,
      "not-json": false,
    });

    const xml = readFileSync(junit, "utf8");
    assert.match(
      xml,
      /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="ci-gate" tests="8" failures="6" errors="0">/,
    );
    assert.match(
      xml,
      /<testsuite name="ci-gate\.cloud\/gpt-4o-mini" tests="8" failures="6" errors="0" skipped="0" time="[\d.]+">/,
    );
    assert.equal(xml.match(/<testcase /g)?.length, 8);
    assert.match(xml, /<testcase classname="ci-gate\.cloud\/gpt-4o-mini" name="money-multiple" time="[\d.]+">/);
    assert.match(
      xml,
      /name="price-multiple"[^>]*>\n\s+<failure message="0\/1 repeats passed: json-schema: at \/price: must be multiple of 0\.1" type="assertion">/,
    );
    assert.match(xml, /name="either-one"[\s\S]*?matches several oneOf alternatives \(0, 1\), not exactly one/);
    assert.match(xml, /name="email-format"[\s\S]*?must match format &quot;email&quot;/);
    // Escaped, so the file stays XML whatever a model answers.
    assert.match(xml, /<system-out>hello &amp; &lt;goodbye&gt;<\/system-out>/);
    assert.match(xml, /<property name="verdict" value="not good enough"\/>/);

    const lines = readFileSync(csv, "utf8").trimEnd().split("\n");
    assert.equal(
      lines[0],
      "run_id,suite,model,case,repeat,pass,failures,error,prompt_tokens,completion_tokens,ttft_ms,duration_ms,cost_usd,served_by,output",
    );
    assert.equal(lines.length, 9, "a header and one row per answer");
    assert.match(
      lines[1]!,
      /^eval_\w+,ci-gate,cloud\/gpt-4o-mini,price-multiple,0,false,json-schema: at \/price: must be multiple of 0\.1,,7,10,\d*,\d+,[\d.e-]+,cloud\/gpt-4o-mini,"{""price"": 0\.35}"$/,
    );
    assert.match(lines[2]!, /,money-multiple,0,true,,,/);
    assert.match(lines[7]!, /,key-order,0,true,/);
  });

  test("a schema Ajv refuses stops the run with the file, line, case and reason; a missing output folder is a usage error", async () => {
    const bad = join(home.path, "bad.yaml");
    writeFileSync(
      bad,
      "cases:\n  - id: fine\n    prompt: price\n    assert: [{ type: is-json }]\n  - id: typo\n    prompt: price\n    assert:\n      - type: json-schema\n        value: { type: object, properties: { price: { type: number, minimun: 0 } } }\n",
    );
    const result = await runCli(["eval", bad, "--models", "cloud/gpt-4o-mini"], { env });
    assert.equal(result.code, 1, result.stderr);
    assert.match(
      result.stderr,
      /bad\.yaml:9: cases\[1\] \(typo\): assert\[0\]\.value: not a JSON schema Ajv \(draft 2020-12\) accepts: strict mode: unknown keyword: "minimun"/,
    );
    assert.equal(cloud.requests.filter((request) => request.body.prompt === "price").length, 1, "nothing was asked");

    const nowhere = join(home.path, "no-such-folder", "eval.xml");
    const usage = await runCli(
      ["eval", join(home.path, "suite.yaml"), "--models", "cloud/gpt-4o-mini", "--junit", nowhere],
      {
        env,
      },
    );
    assert.equal(usage.code, 2, usage.stderr);
    assert.match(usage.stderr, /--junit .*no-such-folder\/eval\.xml: the folder .*no-such-folder does not exist/);
    assert.equal(existsSync(nowhere), false);
  });
});
