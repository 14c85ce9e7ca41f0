import assert from "node:assert/strict";
import { test } from "node:test";
import { InvalidRequestError } from "./errors.js";
import { prepareJsonSchema } from "./jsonSchema.js";

test("normalises into the grammar's dialect", () => {
  const prepared = prepareJsonSchema(
    {
      $schema: "https://json-schema.org/draft/2020-12/schema",
      title: "Answer",
      type: "object",
      properties: { kind: { anyOf: [{ type: "string" }, { type: "null" }] }, item: { $ref: "#/definitions/Item" } },
      required: ["kind"],
      definitions: { Item: { type: ["object", "null"], properties: { id: { type: "integer" } } } },
      additionalProperties: false,
    },
    "response_format",
  );
  assert.deepEqual(prepared, {
    type: "object",
    properties: { kind: { oneOf: [{ type: "string" }, { type: "null" }] }, item: { $ref: "#/$defs/Item" } },
    required: ["kind"],
    $defs: { Item: { oneOf: [{ properties: { id: { type: "integer" } }, type: "object" }, { type: "null" }] } },
    additionalProperties: false,
  });
});

test("refuses what it cannot enforce, naming the path and keyword", () => {
  const cases: [unknown, RegExp][] = [
    [{ type: "string", pattern: "^a+$" }, /at \/pattern: the keyword "pattern" cannot be enforced/],
    [{ type: "object", properties: { n: { type: "number", minimum: 0 } } }, /at \/properties\/n\/minimum/],
    [{ allOf: [{ type: "string" }] }, /"allOf"/],
    [{ type: "string", format: "email" }, /format "email" cannot be enforced/],
    [{ type: "decimal" }, /unknown type "decimal"/],
    [{ $ref: "https://example.com/schema.json" }, /only local references/],
    ["not a schema", /a schema must be a JSON object/],
    [false, /matches nothing/],
  ];
  for (const [schema, pattern] of cases) {
    assert.throws(
      () => prepareJsonSchema(schema, "response_format"),
      (error: unknown) =>
        error instanceof InvalidRequestError && error.param === "response_format" && pattern.test(error.message),
      String(pattern),
    );
  }
});

test("a hostile schema is bounded in depth and size", () => {
  let deep: Record<string, unknown> = { type: "string" };
  for (let i = 0; i < 100; i++) deep = { type: "array", items: deep };
  assert.throws(() => prepareJsonSchema(deep, "format"), /nests deeper than 32/);
  const wide = {
    type: "object",
    properties: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`p${i}`, { type: "string" }])),
  };
  assert.throws(() => prepareJsonSchema(wide, "format"), /too large/);
});
