import type { JsonPathPattern } from "../core/egress.js";

/**
 * Every string of a JSON value, object keys included, in one fixed walk order, and the same value rebuilt with each
 * string replaced. Values at a structural path are left alone. Numbers, booleans and null carry no text.
 */

function matches(pattern: JsonPathPattern, path: readonly (string | number)[]): boolean {
  return pattern.length === path.length && pattern.every((part, i) => part === "*" || part === path[i]);
}

/** `body` with every non-structural string (and key) passed through `replace`, in walk order. */
export function mapStrings(
  body: unknown,
  structural: readonly JsonPathPattern[],
  replace: (text: string) => string,
): unknown {
  const walk = (value: unknown, path: (string | number)[]): unknown => {
    if (typeof value === "string") return structural.some((pattern) => matches(pattern, path)) ? value : replace(value);
    if (Array.isArray(value)) return value.map((item, index) => walk(item, [...path, index]));
    if (value !== null && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        // Keys are content too: a JSON schema's property names, an enum spelled as an object.
        // defineProperty, not assignment: a "__proto__" key stays a plain key.
        Object.defineProperty(out, replace(key), {
          value: walk(item, [...path, key]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    return value;
  };
  return walk(body, []);
}

/** Every non-structural string and key of `body`, in the order mapStrings visits them. */
export function stringsOf(body: unknown, structural: readonly JsonPathPattern[]): string[] {
  const texts: string[] = [];
  mapStrings(body, structural, (text) => {
    texts.push(text);
    return text;
  });
  return texts;
}
