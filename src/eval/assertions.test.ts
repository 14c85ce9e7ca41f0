import assert from "node:assert/strict";
import { test } from "node:test";
import { cosine, evaluateAssertion, type Graders } from "./assertions.js";
import { checkJsonSchema, compileJsonSchema, SchemaError } from "./jsonSchemaCheck.js";
import { parseVerdict } from "./judge.js";
import type { Assertion, EvalCase } from "./suite.js";

const item: EvalCase = { id: "c", prompt: "p", options: {}, assert: [] };
const asked: string[] = [];
const graders: Graders = {
  async verdict(request) {
    asked.push(request.model);
    const content = request.messages.at(-1)!.content;
    const answer = /(?:\nAnswer|Candidate answer):\n([\s\S]*?)\n\n/.exec(content)?.[1] ?? "";
    return { pass: answer.includes("Lily"), reason: "fixed" };
  },
  async embed(_model, texts) {
    return texts.map((text) => (text.includes("girl") ? [1, 0] : [0.6, 0.8]));
  },
  async referenceAnswer(model) {
    return `reference from ${model}`;
  },
};

async function check(
  assertion: Assertion,
  text: string,
  extra: { completionTokens?: number; durationMs?: number } = {},
) {
  return evaluateAssertion(
    assertion,
    { text, completionTokens: extra.completionTokens ?? 3, durationMs: extra.durationMs ?? 10 },
    item,
    graders,
    { judge: "j", embeddingModel: "e", reference: "r" },
  );
}

test("string assertions", async () => {
  assert.equal((await check({ type: "equals", value: "yes" }, "  yes\n")).pass, true);
  assert.equal((await check({ type: "equals", value: "yes" }, "yes!")).pass, false);
  assert.equal((await check({ type: "contains", value: ["a", "b"], match: "all" }, "a")).pass, false);
  assert.equal((await check({ type: "contains", value: ["a", "b"], match: "any" }, "a")).pass, true);
  assert.equal((await check({ type: "contains", value: "Lily", match: "all" }, "lily")).pass, false);
  assert.equal((await check({ type: "icontains", value: "LILY", match: "all" }, "lily")).pass, true);
  assert.deepEqual(await check({ type: "icontains", value: ["x", "y"], match: "all" }, "x"), {
    type: "icontains",
    pass: false,
    detail: 'missing "y"',
  });
  assert.equal((await check({ type: "starts-with", value: "Once" }, "  Once upon")).pass, true);
  assert.equal((await check({ type: "regex", value: "^a\\d$", flags: "i" }, "A7")).pass, true);
  assert.equal((await check({ type: "regex", value: "^a\\d$" }, "A7")).pass, false);
});

test("JSON, tokens and latency", async () => {
  assert.equal((await check({ type: "is-json" }, '{"a": 1}')).pass, true);
  assert.equal((await check({ type: "is-json" }, "{a: 1}")).pass, false);
  const schema = { type: "object", properties: { a: { type: "integer" } }, required: ["a"] };
  assert.equal((await check({ type: "json-schema", value: schema }, '{"a": 1}')).pass, true);
  assert.deepEqual(await check({ type: "json-schema", value: schema }, '{"a": "1"}'), {
    type: "json-schema",
    pass: false,
    detail: "at /a: expected integer, found string",
  });
  assert.equal((await check({ type: "max-tokens", value: 3 }, "x", { completionTokens: 3 })).pass, true);
  assert.equal((await check({ type: "max-tokens", value: 3 }, "x", { completionTokens: 4 })).pass, false);
  assert.equal((await check({ type: "latency-ms", value: 100 }, "x", { durationMs: 150 })).pass, false);
});

test("model-graded assertions: similarity, judge and agreement", async () => {
  const similar = await check({ type: "similar", value: "a girl", threshold: 0.7 }, "a dog");
  assert.equal(similar.pass, false);
  assert.ok(Math.abs(similar.score! - 0.6) < 1e-12);
  assert.equal((await check({ type: "similar", value: "a girl", threshold: 0.5 }, "a dog")).pass, true);
  assert.equal((await check({ type: "judge", rubric: "names Lily" }, "Lily ran")).pass, true);
  assert.equal((await check({ type: "judge", rubric: "names Lily", model: "other" }, "Tom ran")).pass, false);
  assert.equal((await check({ type: "agrees-with", reference: "Lily", judge: "k" }, "Tom")).pass, false);
  assert.equal((await check({ type: "agrees-with" }, "Lily")).pass, true);
  assert.deepEqual(asked, ["j", "other", "k", "j"]);
  assert.equal(cosine([1, 0], [0, 1]), 0);
  assert.equal(cosine([0, 0], [1, 1]), 0);
});

test("verdicts parse, or fail naming the judge", () => {
  assert.deepEqual(parseVerdict("j", '{"reason": "ok", "pass": true}'), { pass: true, reason: "ok" });
  assert.throws(() => parseVerdict("j", "yes"), /the judge j did not answer with JSON/);
  assert.throws(() => parseVerdict("j", '{"pass": "yes"}'), /without a boolean "pass"/);
});

test("JSON schema checks", () => {
  const schema = {
    type: "object",
    properties: {
      tags: { type: "array", items: { enum: ["a", "b"] }, maxItems: 2 },
      name: { type: "string", minLength: 2 },
      kind: { oneOf: [{ const: 1 }, { $ref: "#/$defs/word" }] },
    },
    additionalProperties: false,
    $defs: { word: { type: "string", maxLength: 3 } },
  };
  assert.equal(checkJsonSchema({ tags: ["a"], name: "xy", kind: "abc" }, schema), null);
  assert.equal(checkJsonSchema({ tags: ["c"] }, schema), 'at /tags/0: must be one of ["a","b"]');
  assert.equal(checkJsonSchema({ tags: ["a", "a", "b"] }, schema), "at /tags: must NOT have more than 2 items");
  assert.equal(checkJsonSchema({ name: "x" }, schema), "at /name: must NOT have fewer than 2 characters");
  assert.equal(checkJsonSchema({ kind: "abcd" }, schema), "at /kind: matches none of the oneOf alternatives");
  assert.equal(checkJsonSchema({ extra: 1 }, schema), "at /extra: the property is not allowed");
  assert.equal(checkJsonSchema(1.5, { type: "integer" }), "at /: expected integer, found number");
  assert.equal(checkJsonSchema(2, { type: "number", minimum: 3 }), "at /: must be >= 3");
});

// Each of these passed (or, for `const` and `enum`, failed) wrongly with the hand-written checker Ajv replaced:
// one test per keyword, so each fails on its own against that checker.
const fails = (value: unknown, schema: Record<string, unknown>, problem: RegExp) => {
  const found = checkJsonSchema(value, schema);
  assert.ok(found, `${JSON.stringify(value)} must not match ${JSON.stringify(schema)}`);
  assert.match(found, problem);
};

test("JSON schema: multipleOf", () => {
  fails({ n: 7 }, { properties: { n: { multipleOf: 2 } } }, /at \/n: must be multiple of 2/);
  fails(0.35, { multipleOf: 0.1 }, /multiple of 0\.1/);
  assert.equal(checkJsonSchema(0.3, { multipleOf: 0.1 }), null, "decimal multiples are not float noise");
});

test("JSON schema: exclusiveMaximum and exclusiveMinimum", () => {
  fails(5, { exclusiveMaximum: 5 }, /must be < 5/);
  fails(1, { exclusiveMinimum: 1 }, /must be > 1/);
  assert.equal(checkJsonSchema(4.99, { exclusiveMaximum: 5 }), null);
});

test("JSON schema: uniqueItems, objects compared by value", () => {
  fails(["a", "a"], { uniqueItems: true }, /duplicate items/);
  fails(
    [
      { a: 1, b: 2 },
      { b: 2, a: 1 },
    ],
    { uniqueItems: true },
    /duplicate items/,
  );
  assert.equal(checkJsonSchema([1, "1"], { uniqueItems: true }), null);
});

test("JSON schema: not", () => {
  fails("x", { not: { type: "string" } }, /must NOT be valid/);
  fails({ a: 1 }, { not: { required: ["a"] } }, /must NOT be valid/);
});

test("JSON schema: format (email, date, date-time, uri, uuid)", () => {
  fails("not an address", { format: "email" }, /must match format "email"/);
  fails("2024-13-40", { format: "date" }, /format "date"/);
  fails("yesterday", { format: "date-time" }, /format "date-time"/);
  fails("example.com", { format: "uri" }, /format "uri"/);
  fails("1234", { format: "uuid" }, /format "uuid"/);
  assert.equal(checkJsonSchema("2024-02-29T12:00:00Z", { format: "date-time" }), null);
  assert.equal(checkJsonSchema("someone@example.com", { format: "email" }), null);
});

test("JSON schema: oneOf means exactly one", () => {
  fails(3, { oneOf: [{ type: "integer" }, { minimum: 0 }] }, /matches several oneOf alternatives \(0, 1\)/);
  assert.equal(checkJsonSchema(-3, { oneOf: [{ type: "integer" }, { minimum: 0 }] }), null);
  fails(-1.5, { oneOf: [{ type: "integer" }, { minimum: 0 }] }, /matches none of the oneOf alternatives/);
});

test("JSON schema: const and enum compare objects regardless of key order", () => {
  assert.equal(checkJsonSchema({ a: 1, b: [1, { c: 2, d: 3 }] }, { const: { b: [1, { d: 3, c: 2 }], a: 1 } }), null);
  fails({ a: 1, b: [{ c: 2 }, 1] }, { const: { a: 1, b: [1, { c: 2 }] } }, /must be/);
  assert.equal(checkJsonSchema({ b: 2, a: 1 }, { enum: [{ a: 1, b: 2 }] }), null);
});

test("a schema Ajv refuses is an error that says why, and each schema compiles once", () => {
  assert.throws(() => compileJsonSchema({ type: "string", minLenght: 3 }), SchemaError);
  assert.throws(() => compileJsonSchema({ type: "string", minLenght: 3 }), /unknown keyword: "minLenght"/);
  assert.throws(() => compileJsonSchema({ $ref: "#/$defs/missing" }), /can't resolve reference #\/\$defs\/missing/);
  assert.throws(
    () => compileJsonSchema({ type: "strung" }),
    /schema is invalid: data\/type must be equal to one of the allowed values/,
  );
  const schema = { type: "object", required: ["a"] };
  assert.equal(compileJsonSchema(schema), compileJsonSchema({ ...schema }), "compiled once, by content");
});
