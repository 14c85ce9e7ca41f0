import { StoreError } from "../core/errors.js";

/**
 * A validated model name of Ollama's shape `[host/][namespace/]model[:tag]`.
 *
 * Names keep the case they were given for display, but compare case-insensitively (as Ollama does): `Demo:Tiny` and
 * `demo:tiny` are the same model, so a store on a case-insensitive file system behaves like one on Linux.
 */
export interface ModelName {
  host: string | null;
  namespace: string | null;
  model: string;
  tag: string;
  /** The canonical form people see: `model:tag`, `namespace/model:tag` or `host/namespace/model:tag`. */
  display: string;
  /** The display form in lower case: two names are the same model when their keys are equal. */
  key: string;
}

export const DEFAULT_TAG = "latest";

export const nameLimits = {
  part: 80,
  tag: 80,
  whole: 255,
} as const;

// A part starts with a letter or digit, so "." and ".." and "-flag" are impossible, and "_" (the manifest layout's
// placeholder for a missing host or namespace) can never be a real part.
const partPattern = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function quote(input: string): string {
  const shown = input.length > 100 ? `${input.slice(0, 100)}…` : input;
  return JSON.stringify(shown);
}

function invalid(input: string, reason: string): StoreError {
  return new StoreError(`invalid model name ${quote(input)}: ${reason}`, "invalid_model_name");
}

const form = "names look like model, model:tag, namespace/model:tag or host/namespace/model:tag";

function checkPart(input: string, part: string, what: string, limit: number): void {
  if (part.length === 0) throw invalid(input, `the ${what} is empty; ${form}`);
  if (part === "." || part === "..") throw invalid(input, `"${part}" is not allowed as a ${what}`);
  if (part.length > limit) throw invalid(input, `the ${what} is longer than ${limit} characters`);
  if (!partPattern.test(part)) {
    throw invalid(
      input,
      `the ${what} ${quote(part)} may contain only letters, digits, "-", "_" and ".", and must start with a letter or digit`,
    );
  }
}

/**
 * Parses and validates a model name; the tag defaults to `latest`. Throws StoreError with a message that says what
 * is wrong.
 * @example
 * parseModelName("hf.co/owner/repo:Q4_K_M"); // { host: "hf.co", namespace: "owner", model: "repo", tag: "Q4_K_M", … }
 * parseModelName("stories").display; // "stories:latest"
 */
export function parseModelName(input: string): ModelName {
  if (input.length === 0) throw invalid(input, `it is empty; ${form}`);
  // The characters that turn names into escapes or paths get their own messages, checked before anything else.
  if (input.includes("\0")) throw invalid(input, "it contains a NUL character");
  if (input.includes("%")) throw invalid(input, 'it contains "%"; percent-escapes are not allowed');
  if (input.includes("\\")) throw invalid(input, 'it contains a backslash; separate the parts with "/"');
  if (input.startsWith("/")) throw invalid(input, `it looks like an absolute path; ${form}`);
  if (input.length > nameLimits.whole) throw invalid(input, `it is longer than ${nameLimits.whole} characters`);

  const parts = input.split("/");
  if (parts.length > 3) throw invalid(input, `it has ${parts.length} parts separated by "/"; ${form}`);
  const last = parts.pop()!;
  const colons = last.split(":");
  if (colons.length > 2) throw invalid(input, 'it has more than one ":"; only the tag follows a ":"');
  const [model, tag = DEFAULT_TAG] = colons as [string, string?];
  const [host, namespace] = parts.length === 2 ? [parts[0]!, parts[1]!] : [null, parts[0] ?? null];

  for (const part of parts) {
    if (part.includes(":")) {
      throw invalid(input, '":" is only allowed before the tag (hosts with a port are not supported)');
    }
  }
  if (host !== null) checkPart(input, host, "host", nameLimits.part);
  if (namespace !== null) checkPart(input, namespace, "namespace", nameLimits.part);
  checkPart(input, model, "model", nameLimits.part);
  checkPart(input, tag, "tag", nameLimits.tag);

  const display = `${[host, namespace, model].filter((part) => part !== null).join("/")}:${tag}`;
  return { host, namespace, model, tag, display, key: display.toLowerCase() };
}

/** True when both strings name the same model (case-insensitive, tag defaulted). Both must be valid names. */
export function sameModelName(a: string, b: string): boolean {
  return parseModelName(a).key === parseModelName(b).key;
}
