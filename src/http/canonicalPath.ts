import { InvalidRequestError } from "../core/errors.js";

/** RFC 3986's unreserved characters: percent-encoding them changes nothing but the spelling. */
const unreserved = /^[A-Za-z0-9\-._~]$/;

/**
 * Why a request path (as the URL parser left it: dot segments already resolved) is not spelled canonically, or
 * undefined when it is. Two spellings of one route would let anything that reads the path (audit, ledger, logs,
 * a future prefix check) disagree with the router, so ambiguous spellings are refused instead of decoded:
 * - a percent-encoded unreserved character (`/%61dmin`): it has one plain spelling, and no client needs another;
 * - an empty segment (`//admin`, `/admin//keys`): some routers merge slashes, Hono does not;
 * - an encoded backslash (`%5C`): some stacks read it as a separator.
 * An encoded slash (`%2F`) stays allowed: the router never decodes it, so it cannot reach another route, and it is
 * how clients send a model name with slashes in a path parameter (`/v1/models/hf.co%2Forg%2Frepo`).
 */
export function nonCanonicalReason(path: string): string | undefined {
  if (path.includes("//")) return "it has an empty segment (//)";
  for (const match of path.matchAll(/%([0-9A-Fa-f]{2})/g)) {
    const character = String.fromCharCode(Number.parseInt(match[1]!, 16));
    if (unreserved.test(character)) return `it percent-encodes ${JSON.stringify(character)} (${match[0]})`;
    if (character === "\\") return "it has an encoded backslash (%5C)";
  }
  return undefined;
}

/** Refuses a path that is not spelled canonically (400, code `noncanonical_path`). */
export function assertCanonicalPath(path: string): void {
  const reason = nonCanonicalReason(path);
  if (reason)
    throw new InvalidRequestError(
      `The request path ${JSON.stringify(path.slice(0, 200))} is not spelled canonically: ${reason}. Send the plain path (for example /admin/keys), without percent-encoding letters, digits or "-._~" and without repeated slashes.`,
      null,
      "noncanonical_path",
    );
}
