import { randomUUID } from "node:crypto";
import type { Hono } from "hono";
import type { ApiSurface } from "../core/context.js";
import { FreeholdError, InvalidRequestError } from "../core/errors.js";
import type { AppEnv } from "./appEnv.js";
import { isStreamed, onBodyEnd } from "./bodyEnd.js";
import { assertCanonicalPath } from "./canonicalPath.js";
import { appWide } from "./guard.js";
import { hostAllowed } from "./hostCheck.js";
import type { NodeResponse } from "./nodeResponse.js";
import { assertJsonBody } from "./origins.js";

/**
 * The plumbing every request goes through before any route (app.ts assembles the routes): the Host check, one
 * spelling per path, the request's id, context, abort signal and JSON body, the in-flight count, the body limit.
 */

/** What the request scope needs from the app's options. */
export interface RequestScopeOptions {
  /** The address the server listens on (decides which Host headers are ours). */
  listenHost: string;
  allowedHosts: readonly string[];
  maxBodyBytes: number;
  /** Aborted when the server gives up on in-flight requests (shutdown after the drain timeout). */
  shutdownSignal?: AbortSignal;
  /** Called as each request starts and once when it ends (for a streamed answer: when its body ends). */
  onRequestStart?: () => void;
  onRequestEnd?: () => void;
}

function apiSurfaceFor(path: string): ApiSurface {
  if (path.startsWith("/v1/messages")) return "anthropic";
  if (path.startsWith("/api/") || path === "/") return "ollama";
  if (path.startsWith("/v1/")) return "openai";
  return "freehold";
}

/** The request body as text, at most `max` bytes however it is sent (chunked bodies are counted as they arrive). */
async function readBody(request: Request, max: number, tooLarge: () => Error): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * One AbortSignal per request, aborted when the client goes away or the server stops waiting. Served by
 * @hono/node-server, the response's `close` (before it finished) says the client left, which is cheaper than the
 * adapter's own request signal combined with AbortSignal.any; anywhere else (app.fetch), the request's signal.
 */
function requestAborts(
  env: unknown,
  request: Request,
  shutdown: AbortSignal | undefined,
): { signal: AbortSignal; release: () => void } {
  const controller = new AbortController();
  const outgoing = (env as { outgoing?: NodeResponse } | undefined)?.outgoing;
  if (outgoing && typeof outgoing.once === "function") {
    outgoing.once("close", () => {
      if (!outgoing.writableFinished) controller.abort(new Error("the client closed the connection"));
    });
  } else {
    request.signal.addEventListener("abort", () => controller.abort(request.signal.reason), { once: true });
  }
  if (!shutdown) return { signal: controller.signal, release: () => {} };
  const onShutdown = () => controller.abort(shutdown.reason);
  if (shutdown.aborted) onShutdown();
  else shutdown.addEventListener("abort", onShutdown, { once: true });
  return { signal: controller.signal, release: () => shutdown.removeEventListener("abort", onShutdown) };
}

function tooLarge(maxBodyBytes: number): FreeholdError {
  return new FreeholdError(`request body is larger than the limit of ${maxBodyBytes.toLocaleString("en-US")} bytes`, {
    code: "request_too_large",
    status: 413,
    type: "invalid_request_error",
  });
}

/** Sets up each request: the first app-wide middleware, so every refusal after it has an id, a context and a signal. */
export function registerRequestScope(app: Hono<AppEnv>, options: RequestScopeOptions): void {
  app.use(
    "*",
    appWide(async (c, next) => {
      const host = c.req.header("host") ?? new URL(c.req.url).host;
      if (!hostAllowed(host, options.listenHost, options.allowedHosts)) {
        // DNS rebinding: a web page may resolve its own name to 127.0.0.1; refuse Host names that are not ours.
        throw new FreeholdError(
          `Host header ${JSON.stringify(host ?? "")} is not allowed; add it with --allowed-hosts if this is intended`,
          {
            code: "host_not_allowed",
            status: 403,
            type: "permission_error",
          },
        );
      }
      const path = new URL(c.req.url).pathname;
      // The router decodes percent-encoding; one route, one spelling (canonicalPath.ts says why).
      assertCanonicalPath(path);
      options.onRequestStart?.();
      const aborts = requestAborts(c.env, c.req.raw, options.shutdownSignal);
      c.set("signal", aborts.signal);
      const requestId = `req_${randomUUID().replaceAll("-", "")}`;
      c.set("context", { requestId, api: apiSurfaceFor(path), route: path });
      c.header("x-request-id", requestId);
      let parsed: Promise<unknown> | undefined;
      c.set("json", () => {
        // Every route that reads a JSON body comes through here: the body's declared type is checked first.
        parsed ??= Promise.resolve()
          .then(() => assertJsonBody(c.req.raw.headers))
          .then(() => readBody(c.req.raw, options.maxBodyBytes, () => tooLarge(options.maxBodyBytes)))
          .then((text) => {
            try {
              return JSON.parse(text) as unknown;
            } catch {
              throw new InvalidRequestError(
                "We could not parse the JSON body of your request: it is not valid JSON. Send a JSON object with Content-Type: application/json.",
                null,
                "invalid_json",
              );
            }
          });
        return parsed;
      });
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        aborts.release();
        options.onRequestEnd?.();
      };
      try {
        await next();
      } catch (error) {
        end();
        throw error;
      }
      // A streamed answer is still in flight after the handler returns: count it until its body ends.
      // (The body is only touched for streams: reading it from a plain answer would cost the adapter's fast path.)
      const body = isStreamed(c.res) ? c.res.body : null;
      if (body) c.res = new Response(onBodyEnd(body, end), c.res);
      else end();
    }),
  );
}

/**
 * A body with a Content-Length is judged by it at once (the HTTP parser never delivers more than it says); a chunked
 * one is counted as it is read (readBody), and refused the moment it passes the limit.
 */
export function registerBodyLimit(app: Hono<AppEnv>, maxBodyBytes: number): void {
  app.use(
    "*",
    appWide(async (c, next) => {
      const length = c.req.header("content-length");
      if (length !== undefined && (!/^\d+$/.test(length) || Number(length) > maxBodyBytes))
        throw tooLarge(maxBodyBytes);
      return next();
    }),
  );
}
