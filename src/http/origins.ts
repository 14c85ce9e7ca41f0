import type { Context, Hono } from "hono";
import { FreeholdError } from "../core/errors.js";
import type { AppEnv } from "./appEnv.js";
import { appWide } from "./guard.js";

/** http(s) pages served from this machine: 127.0.0.0/8, localhost and [::1], any port. */
const loopbackOrigin = /^https?:\/\/(?:127\.\d{1,3}\.\d{1,3}\.\d{1,3}|localhost|\[::1\])(?::\d{1,5})?$/i;

/**
 * Whether a page from `origin` (the browser's Origin header) may call this server: loopback pages always; others
 * only when listed (FREEHOLD_ORIGINS or freehold.yaml `server.origins`): exactly, by a prefix ending in `*`
 * (`chrome-extension://*`), or `*` for any. "null" (sandboxed frames, file: pages) is a foreign origin.
 */
export function originAllowed(origin: string, allowed: readonly string[]): boolean {
  if (loopbackOrigin.test(origin)) return true;
  const lower = origin.toLowerCase();
  return allowed.some((entry) => {
    const rule = entry.toLowerCase();
    if (rule === "*") return true;
    if (rule.endsWith("*")) return lower.startsWith(rule.slice(0, -1));
    return lower === rule.replace(/\/$/, "");
  });
}

const exposedHeaders = [
  "x-request-id",
  "retry-after",
  "x-ratelimit-limit-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-requests",
  "x-ratelimit-reset-tokens",
].join(", ");

/** The headers a preflight asks for, if they are a plain list of header names (echoed back for allowed origins). */
function requestedHeaders(c: Context<AppEnv>): string | undefined {
  const asked = c.req.header("access-control-request-headers");
  return asked && /^[A-Za-z0-9!#$%&'*+.^_`|~-]+(?:\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$/.test(asked.trim())
    ? asked.trim()
    : undefined;
}

/**
 * Cross-site use. A browser sends Origin with every cross-origin request (and with every POST), so a request whose
 * Origin is present and not allowed comes from some other site's page and is refused (403), as Ollama does with
 * OLLAMA_ORIGINS; without this, any page could drive a keyless loopback server with no-preflight `text/plain`
 * POSTs. Allowed origins get CORS headers and their preflights (OPTIONS) are answered here; nobody else gets either.
 */
export function registerOriginMiddleware(app: Hono<AppEnv>, allowed: readonly string[]): void {
  app.use(
    "*",
    appWide(async (c, next) => {
      const origin = c.req.header("origin");
      if (origin === undefined) return next();
      if (!originAllowed(origin, allowed))
        throw new FreeholdError(
          `Requests from web pages at ${JSON.stringify(origin.slice(0, 200))} are not allowed: only this machine's pages (http://localhost, 127.0.0.1, [::1]) may call freehold from a browser. Add the origin to FREEHOLD_ORIGINS (or server.origins in freehold.yaml) if this page is yours.`,
          { code: "origin_not_allowed", status: 403, type: "permission_error" },
        );
      if (c.req.method === "OPTIONS" && c.req.header("access-control-request-method")) {
        const headers = new Headers({
          "access-control-allow-origin": origin,
          "access-control-allow-methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
          "access-control-max-age": "600",
          vary: "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
        });
        const asked = requestedHeaders(c);
        if (asked) headers.set("access-control-allow-headers", asked);
        return new Response(null, { status: 204, headers });
      }
      await next();
      c.res.headers.set("access-control-allow-origin", origin);
      c.res.headers.set("access-control-expose-headers", exposedHeaders);
      c.res.headers.append("vary", "Origin");
    }),
  );
}

/** What a JSON endpoint accepts as its body's Content-Type: application/json, with or without parameters. */
function isJsonType(contentType: string): boolean {
  return contentType.split(";")[0]!.trim().toLowerCase() === "application/json";
}

/**
 * Refuses a body that is not declared as JSON (415), before it is parsed. `text/plain`, form and multipart bodies
 * are what a page can send cross-site without a preflight, so they are never read as JSON. A body with no
 * Content-Type at all is accepted only from a non-browser caller (no Origin header): scripts that build requests by
 * hand; `curl -d` sends a form type and needs `-H 'content-type: application/json'` (or `curl --json`).
 */
export function assertJsonBody(headers: Headers): void {
  const type = headers.get("content-type");
  if (type === null && headers.get("origin") === null) return;
  if (type !== null && isJsonType(type)) return;
  throw new FreeholdError(
    `This endpoint reads a JSON body, but the request's Content-Type is ${type === null ? "missing" : JSON.stringify(type.slice(0, 100))}. Send the body with Content-Type: application/json (with curl: -H 'content-type: application/json', or --json).`,
    { code: "unsupported_media_type", status: 415, type: "invalid_request_error" },
  );
}
