import { createRequire } from "node:module";
import type { Ajv2020, ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import type formatsPlugin from "ajv-formats";

/**
 * Checks answers against JSON schemas with Ajv (draft 2020-12) and ajv-formats. It replaced a hand-written checker
 * that ignored multipleOf, exclusiveMaximum, uniqueItems, not and format, and accepted a value matching several oneOf
 * alternatives: every one of those passed answers that were wrong, which inflated pass rates.
 */
type Schema = Record<string, unknown>;

/** A schema Ajv refuses (an unknown keyword, a bad $ref, a wrong keyword value); the message says which part. */
export class SchemaError extends Error {}

// One Ajv for the process, made on first use: loading Ajv takes ~0.2 s, which every CLI command would otherwise pay
// (the program registers `eval` at start). It keeps compiled schemas, and strict mode refuses unknown keywords (a
// misspelt `minLenght` would otherwise be ignored, and every answer would pass it). Type, tuple and `required` hints
// are not refused: schemas written for structured output often leave them implicit (`{type: object, required: [name]}`).
// verbose: errors carry the value, so a type error can say what was found. multipleOfPrecision: without it 0.3 is not
// a multiple of 0.1 (0.3 / 0.1 = 2.9999999999999996), and prices with `multipleOf: 0.01` would fail.
let ajv: Ajv2020 | undefined;
function validator(): Ajv2020 {
  if (ajv) return ajv;
  const require = createRequire(import.meta.url);
  const { Ajv2020: Ajv } = require("ajv/dist/2020.js") as typeof import("ajv/dist/2020.js");
  const formats = require("ajv-formats") as typeof formatsPlugin;
  ajv = new Ajv({
    strict: true,
    strictTypes: false,
    strictTuples: false,
    strictRequired: false,
    verbose: true,
    allErrors: false,
    logger: false,
    multipleOfPrecision: 9,
  });
  formats.default(ajv);
  return ajv;
}

// Keyed by the schema's text, so a run resumed from the store (schemas parsed afresh) reuses the compiled function.
const compiled = new Map<string, ValidateFunction>();

/** Compiles a schema once; throws SchemaError with Ajv's reason when the schema is not valid. */
export function compileJsonSchema(schema: Schema): ValidateFunction {
  const key = JSON.stringify(schema);
  const known = compiled.get(key);
  if (known) return known;
  let validate: ValidateFunction;
  try {
    validate = validator().compile(schema);
  } catch (error) {
    throw new SchemaError(`not a JSON schema Ajv (draft 2020-12) accepts: ${(error as Error).message}`);
  }
  compiled.set(key, validate);
  return validate;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function describe(error: ErrorObject): string {
  const at = error.instancePath || "/";
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case "type":
      return `at ${at}: expected ${String(params.type)}, found ${typeOf(error.data)}`;
    case "enum":
      return `at ${at}: must be one of ${JSON.stringify(params.allowedValues)}`;
    case "const":
      return `at ${at}: must be ${JSON.stringify(params.allowedValue)}`;
    case "additionalProperties":
      return `at ${error.instancePath}/${String(params.additionalProperty)}: the property is not allowed`;
    case "oneOf":
      return params.passingSchemas
        ? `at ${at}: matches several oneOf alternatives (${(params.passingSchemas as number[]).join(", ")}), not exactly one`
        : `at ${at}: matches none of the oneOf alternatives`;
    default:
      return `at ${at}: ${error.message ?? error.keyword}`;
  }
}

/** The first problem as "at /path: what is wrong", or null when the value matches. */
export function checkJsonSchema(value: unknown, schema: Schema): string | null {
  const validate = compileJsonSchema(schema);
  if (validate(value)) return null;
  // Without allErrors Ajv stops at the first failing keyword; the errors before it are the alternatives a oneOf or
  // anyOf tried, so the last one is the failure that decided.
  const error = validate.errors?.at(-1);
  return error ? describe(error) : "at /: does not match the schema";
}
