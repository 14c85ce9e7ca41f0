import type { z } from "zod";
import { InvalidRequestError } from "../core/errors.js";

/** "messages[0].content" from a zod issue path. */
export function fieldPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out;
}

function describe(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined
        ? "is required"
        : `must be ${issue.expected === "int" ? "an integer" : `a ${issue.expected}`}`;
    case "too_small":
      return issue.origin === "array" || issue.origin === "string"
        ? `must have at least ${issue.minimum} ${issue.origin === "array" ? "item(s)" : "character(s)"}`
        : `must be ${issue.inclusive ? "at least" : "greater than"} ${issue.minimum}`;
    case "too_big":
      return issue.origin === "array" || issue.origin === "string"
        ? `must have at most ${issue.maximum} ${issue.origin === "array" ? "item(s)" : "character(s)"}`
        : `must be ${issue.inclusive ? "at most" : "less than"} ${issue.maximum}`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "unrecognized_keys":
      return `has unknown field(s) ${issue.keys.join(", ")}`;
    case "invalid_key":
      // A record's key that fails its schema: say what keys must be (the key's own message).
      return issue.issues[0]?.message ?? issue.message;
    default:
      return issue.message;
  }
}

/** Parses `body` with `schema`, or throws a 400 that names the first bad field and says what it must be. */
export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.infer<S> {
  // reportInput: the issue then says whether the field was missing or of the wrong type.
  const result = schema.safeParse(body, { reportInput: true });
  if (result.success) return result.data;
  // Prefer the deepest issue of a union: it names the field that is actually wrong.
  let issue = result.error.issues[0]!;
  while (issue.code === "invalid_union" && issue.errors.length > 0) {
    const candidates = issue.errors.flat();
    const deepest = candidates.sort((a, b) => b.path.length - a.path.length)[0];
    if (!deepest) break;
    issue = { ...deepest, path: [...issue.path, ...deepest.path] };
  }
  const param = fieldPath(issue.path);
  const message = issue.code === "custom" ? issue.message : `${param || "body"} ${describe(issue)}`;
  throw new InvalidRequestError(
    // Only a leading "param " is dropped: a custom message may name the field again further on.
    param
      ? `Invalid value for ${param}: ${message.startsWith(`${param} `) ? message.slice(param.length + 1) : message}`
      : `Invalid request body: ${message}`,
    param || null,
  );
}

/** Throws a 400 naming the first field of `fields` that is present (not null or absent) in `body`. */
export function refuseFields(body: Record<string, unknown>, fields: Record<string, string>): void {
  for (const [field, message] of Object.entries(fields)) {
    if (body[field] !== undefined && body[field] !== null)
      throw new InvalidRequestError(`Invalid value for ${field}: ${message}`, field);
  }
}
