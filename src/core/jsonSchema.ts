import { InvalidRequestError } from "./errors.js";

/** What the grammar engine enforces; anything else in a schema is refused rather than silently loosened. */
const supported = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "prefixItems",
  "minItems",
  "maxItems",
  "enum",
  "const",
  "oneOf",
  "anyOf",
  "$ref",
  "$defs",
  "definitions",
  "description",
  "format",
  "minLength",
  "maxLength",
  "minProperties",
  "maxProperties",
]);
/** Annotations that do not constrain values: dropped. */
const annotations = new Set([
  "$schema",
  "$id",
  "$comment",
  "title",
  "default",
  "examples",
  "readOnly",
  "writeOnly",
  "deprecated",
  "strict",
]);
const simpleTypes = new Set(["string", "number", "integer", "boolean", "null"]);
const formats = new Set(["date-time", "date", "time"]);
const MAX_NODES = 2000;
const MAX_DEPTH = 32;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Checks a JSON schema against what grammar-constrained generation can enforce and rewrites it into that dialect
 * (anyOf → oneOf, `definitions` → `$defs`, type lists with object/array → oneOf). Throws a 400 that names the path
 * and keyword of the first thing it cannot enforce. Bounded in size and depth, so a hostile schema costs little.
 */
export function prepareJsonSchema(schema: unknown, param: string): Record<string, Json> {
  let nodes = 0;
  const fail = (path: string, message: string): never => {
    throw new InvalidRequestError(`${param}${path ? ` at ${path}` : ""}: ${message}`, param);
  };
  const visit = (node: unknown, path: string, depth: number): Json => {
    if (++nodes > MAX_NODES) fail(path, `the schema is too large (more than ${MAX_NODES} parts)`);
    if (depth > MAX_DEPTH) fail(path, `the schema nests deeper than ${MAX_DEPTH} levels`);
    if (typeof node === "boolean") {
      if (node) return {};
      fail(path, "a `false` schema matches nothing");
    }
    if (node === null || typeof node !== "object" || Array.isArray(node)) fail(path, "a schema must be a JSON object");
    const input = node as Record<string, unknown>;
    const out: Record<string, Json> = {};
    for (const [key, value] of Object.entries(input)) {
      if (annotations.has(key)) continue;
      if (!supported.has(key))
        fail(`${path}/${key}`, `the keyword "${key}" cannot be enforced during generation; remove it`);
      const at = `${path}/${key}`;
      switch (key) {
        case "properties":
        case "$defs":
        case "definitions": {
          if (value === null || typeof value !== "object" || Array.isArray(value))
            fail(at, "must be an object of schemas");
          const children: Record<string, Json> = {};
          for (const [name, child] of Object.entries(value as Record<string, unknown>))
            children[name] = visit(child, `${at}/${name}`, depth + 1);
          out[key === "definitions" ? "$defs" : key] = children;
          break;
        }
        case "items":
        case "additionalProperties":
          out[key] = typeof value === "boolean" ? value : visit(value, at, depth + 1);
          break;
        case "prefixItems":
        case "oneOf":
        case "anyOf": {
          if (!Array.isArray(value) || value.length === 0) fail(at, "must be a non-empty array of schemas");
          out[key === "anyOf" ? "oneOf" : key] = (value as unknown[]).map((child, index) =>
            visit(child, `${at}/${index}`, depth + 1),
          );
          break;
        }
        case "type": {
          const types = Array.isArray(value) ? value : [value];
          for (const type of types) {
            if (typeof type !== "string" || !(simpleTypes.has(type) || type === "object" || type === "array")) {
              fail(at, `unknown type ${JSON.stringify(type)}`);
            }
          }
          out.type = value as Json;
          break;
        }
        case "format":
          if (typeof value !== "string" || !formats.has(value)) {
            fail(at, `format ${JSON.stringify(value)} cannot be enforced (supported: ${[...formats].join(", ")})`);
          }
          out.format = value as string;
          break;
        case "required":
          if (!Array.isArray(value) || value.some((item) => typeof item !== "string"))
            fail(at, "must be an array of property names");
          out.required = value as string[];
          break;
        case "enum":
          if (!Array.isArray(value) || value.length === 0) fail(at, "must be a non-empty array");
          out.enum = value as Json[];
          break;
        case "minItems":
        case "maxItems":
        case "minLength":
        case "maxLength":
        case "minProperties":
        case "maxProperties":
          if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 100_000)
            fail(at, "must be a whole number");
          out[key] = value as number;
          break;
        case "$ref":
          if (typeof value !== "string" || !/^#\/(\$defs|definitions)\/[^/]+$/.test(value))
            fail(at, 'only local references like "#/$defs/Name" are supported');
          out.$ref = (value as string).replace("#/definitions/", "#/$defs/");
          break;
        default:
          out[key] = value as Json;
      }
    }
    // A list of types that includes object or array becomes a oneOf, which the grammar supports.
    if (Array.isArray(out.type) && out.type.some((type) => type === "object" || type === "array")) {
      const { type, ...rest } = out;
      return {
        oneOf: (type as string[]).map((single) =>
          single === "object" || single === "array" ? { ...rest, type: single } : { type: single },
        ),
      };
    }
    return out;
  };
  return visit(schema, "", 0) as Record<string, Json>;
}
