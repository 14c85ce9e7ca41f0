import type { JsonPathPattern } from "../core/egress.js";

/**
 * Every string of a JSON value, object keys included, in one fixed walk order, and the same value rebuilt with each
 * string replaced. Values at a structural path are left alone. Numbers are text too (a card number sent as a JSON
 * number): they are passed as their decimal form and stay numbers unless replaced. Booleans and null carry nothing.
 */

/** Where a string sits: ordinary content, or an id the client chose (scanned without the randomness heuristic). */
export type Slot = "text" | "identifier";

function matches(pattern: JsonPathPattern, path: readonly (string | number)[]): boolean {
  return pattern.length === path.length && pattern.every((part, i) => part === "*" || part === path[i]);
}

/** `body` with every non-structural string, number and key passed through `replace`, in walk order. */
export function mapStrings(
  body: unknown,
  structural: readonly JsonPathPattern[],
  replace: (text: string, slot: Slot) => string,
  identifiers: readonly JsonPathPattern[] = [],
): unknown {
  const walk = (value: unknown, path: (string | number)[]): unknown => {
    if (typeof value === "string" || typeof value === "number") {
      if (structural.some((pattern) => matches(pattern, path))) return value;
      const slot = identifiers.some((pattern) => matches(pattern, path)) ? "identifier" : "text";
      const text = String(value);
      const replaced = replace(text, slot);
      return typeof value === "number" && replaced === text ? value : replaced;
    }
    if (Array.isArray(value)) return value.map((item, index) => walk(item, [...path, index]));
    if (value !== null && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) {
        // Keys are content too: a JSON schema's property names, an enum spelled as an object. defineProperty, not
        // assignment: a "__proto__" key stays a plain key.
        Object.defineProperty(out, replace(key, "text"), {
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

/** Every non-structural string, number and key of `body`, in the order mapStrings visits them. */
export function stringsOf(
  body: unknown,
  structural: readonly JsonPathPattern[],
  identifiers: readonly JsonPathPattern[] = [],
): { text: string; slot: Slot }[] {
  const texts: { text: string; slot: Slot }[] = [];
  mapStrings(
    body,
    structural,
    (text, slot) => {
      texts.push({ text, slot });
      return text;
    },
    identifiers,
  );
  return texts;
}
