import { randomUUID } from "node:crypto";
import { Hono } from "hono";
import { z } from "zod";
import type { ModelCatalog, ModelControl, ModelSupply } from "../core/catalog.js";
import type { ApiSurface, RequestContext } from "../core/context.js";
import { FreeholdError, InvalidRequestError, OverloadedError } from "../core/errors.js";
import type { Gateway } from "../gateway/gateway.js";
import { registerAccountRoutes } from "./account.js";
import { type ConsoleSources, registerAdminRoutes } from "./admin.js";
import { anthropicErrorBody } from "./anthropic/errors.js";
import { registerAnthropicRoutes } from "./anthropic/routes.js";
import { registerAccessMiddleware, registerReportingMiddleware } from "./auth.js";
import { assertCanonicalPath } from "./canonicalPath.js";
import { registerConsoleRoutes } from "./console.js";
import type { HttpControl } from "./control.js";
import { registerExplainRoute } from "./explain.js";
import { type AccessDeclaration, appWide, guard } from "./guard.js";
import { hostAllowed } from "./hostCheck.js";
import type { NodeResponse } from "./nodeResponse.js";
import { ollamaErrorBody } from "./ollama/errors.js";
import { type LoadedModelsSource, registerOllamaPs } from "./ollama/ps.js";
import { registerOllamaRoutes } from "./ollama/routes.js";
import { openAIErrorBody } from "./openai/errors.js";
import { registerResponsesRoutes } from "./openai/responses.js";
import { registerOpenAIRoutes } from "./openai/routes.js";
import { assertJsonBody, registerOriginMiddleware } from "./origins.js";
import { registerRerank } from "./rerank.js";
import { parseBody } from "./validate.js";

const unloadSchema = z.object({ model: z.string().min(1).max(512) });

export interface HealthSource {
  /** "ok" when ready; otherwise why not (model loading, no runner can start). */
  health(): { ready: boolean; status: string; detail: Record<string, unknown> };
}

export interface AppOptions {
  gateway: Gateway;
  health: HealthSource;
  loadedModels: LoadedModelsSource;
  models: ModelControl;
  catalog: ModelCatalog;
  /** Pull from the hub and create profiles (POST /api/pull, /api/create); 501 without it. */
  supply?: ModelSupply;
  /** Routing decisions by request id, for GET /freehold/explain/{id}. */
  decisions?: { get(requestId: string): unknown | Promise<unknown> };
  version: string;
  /** The address the server listens on (decides which Host headers are ours). */
  listenHost: string;
  allowedHosts: readonly string[];
  /** Web origins beyond loopback whose pages may call the API (FREEHOLD_ORIGINS); others are refused (origins.ts). */
  allowedOrigins?: readonly string[];
  maxBodyBytes: number;
  /** Aborted when the server gives up on in-flight requests (shutdown after the drain timeout). */
  shutdownSignal?: AbortSignal;
  onRequestStart?: () => void;
  onRequestEnd?: () => void;
  /** Keys, limits, ledger, audit and metrics (src/control); absent = an open server with no /admin routes. */
  control?: HttpControl;
  /** Routes and evaluation runs for the console's admin pages (GET /admin/routes, /admin/evals). */
  consoleSources?: ConsoleSources;
  /** The built web console (default dist/console, which `npm ci` builds). */
  consoleDir?: string;
}

/** Each API answers errors in its own shape: Anthropic's under /v1/messages, Ollama's under /api/, OpenAI's elsewhere. */
function errorBodyFor(path: string, error: unknown): { status: number; body: unknown } {
  if (path.startsWith("/v1/messages")) return anthropicErrorBody(error);
  if (path.startsWith("/api/")) return ollamaErrorBody(error);
  return openAIErrorBody(error);
}

function apiSurfaceFor(path: string): ApiSurface {
  if (path.startsWith("/v1/messages")) return "anthropic";
  if (path.startsWith("/api/") || path === "/") return "ollama";
  if (path.startsWith("/v1/")) return "openai";
  return "freehold";
}

/** Passes a body through and calls `onEnd` once when it finishes, fails or is cancelled by the client. */
function onStreamEnd(body: ReadableStream<Uint8Array>, onEnd: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            controller.close();
            onEnd();
          } else {
            controller.enqueue(value);
          }
        } catch (error) {
          controller.error(error);
          onEnd();
        }
      },
      async cancel(reason) {
        onEnd();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
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

export type AppEnv = {
  Variables: {
    /** Parses the JSON body once; malformed JSON is a 400. */
    json: () => Promise<unknown>;
    /** Aborted when the client goes away or the server stops waiting. */
    signal: AbortSignal;
    /** Who is asking, through which API (the control plane adds the caller's key). */
    context: RequestContext;
    /** Who may call the matched route, once the access middleware authorized the request (guard.ts). */
    access: AccessDeclaration;
  };
};

/**
 * The HTTP app. Built on web-standard Request/Response, so it can be served by @hono/node-server, embedded via
 * `app.fetch`, and tested with `app.request()` without a socket.
 */
export function createApp(options: AppOptions): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

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
          .then(() => readBody(c.req.raw, options.maxBodyBytes, tooLarge))
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
      const type = c.res.headers.get("content-type") ?? "";
      const body = type.startsWith("text/event-stream") || type.startsWith("application/x-ndjson") ? c.res.body : null;
      if (body) c.res = new Response(onStreamEnd(body, end), c.res);
      else end();
    }),
  );

  if (options.control) registerReportingMiddleware(app, options.control);
  registerOriginMiddleware(app, options.allowedOrigins ?? []);
  registerAccessMiddleware(app, options.control);

  function tooLarge() {
    return new FreeholdError(
      `request body is larger than the limit of ${options.maxBodyBytes.toLocaleString("en-US")} bytes`,
      {
        code: "request_too_large",
        status: 413,
        type: "invalid_request_error",
      },
    );
  }
  // A body with a Content-Length is judged by it at once (the HTTP parser never delivers more than it says); a
  // chunked one is counted as it is read (readBody), and refused the moment it passes the limit.
  app.use(
    "*",
    appWide(async (c, next) => {
      const length = c.req.header("content-length");
      if (length !== undefined && (!/^\d+$/.test(length) || Number(length) > options.maxBodyBytes)) throw tooLarge();
      return next();
    }),
  );

  app.get("/health", guard("public"), (c) => {
    const health = options.health.health();
    return c.json({ status: health.status, ...health.detail }, health.ready ? 200 : 503);
  });
  // Readiness beside liveness: a load balancer sends traffic only to replicas whose control plane answers at the
  // current schema (a replica without its database would refuse every request anyway, with 503s).
  app.get("/ready", guard("public"), async (c) => {
    if (!options.control) return c.json({ status: "ready", database: null });
    try {
      const store = await options.control.ready();
      return c.json({ status: "ready", database: { engine: store.engine, schema_version: store.schemaVersion } });
    } catch (error) {
      c.header("Retry-After", "1");
      return c.json({ status: "not-ready", reason: error instanceof Error ? error.message : String(error) }, 503);
    }
  });
  app.get("/", guard("public"), (c) => c.text("freehold is running"));

  registerOpenAIRoutes(app, options.gateway);
  registerRerank(app, options.gateway);
  registerResponsesRoutes(app, options.gateway);
  registerAnthropicRoutes(app, options.gateway);
  registerOllamaPs(app, options.loadedModels);
  registerOllamaRoutes(app, {
    gateway: options.gateway,
    catalog: options.catalog,
    models: options.models,
    version: options.version,
    ...(options.supply ? { supply: options.supply } : {}),
  });
  app.post("/freehold/unload", guard("admin"), async (c) => {
    const body = parseBody(unloadSchema, await c.get("json")());
    const unloaded = await options.models.unload(body.model);
    return c.json({ model: body.model, unloaded });
  });

  registerExplainRoute(app, options.decisions, options.control);

  if (options.control) {
    registerAdminRoutes(app, options.control, options.consoleSources);
    registerAccountRoutes(app, options.control);
  }
  registerConsoleRoutes(app, options.consoleDir);

  app.notFound((c) => {
    const error = new FreeholdError(`Unknown request URL: ${c.req.method} ${new URL(c.req.url).pathname}`, {
      code: "unknown_url",
      status: 404,
      type: "not_found_error",
    });
    const { body } = errorBodyFor(new URL(c.req.url).pathname, error);
    return c.json(body, 404);
  });

  app.onError((error, c) => {
    const { status, body } = errorBodyFor(new URL(c.req.url).pathname, error);
    // The rest of a refused body was never read: the connection cannot carry another request.
    if (status === 413) c.header("Connection", "close");
    if (error instanceof OverloadedError) c.header("Retry-After", String(error.retryAfterSeconds));
    else if (
      error instanceof FreeholdError &&
      "retryAfterSeconds" in error &&
      typeof error.retryAfterSeconds === "number"
    )
      c.header("Retry-After", String(Math.ceil(error.retryAfterSeconds)));
    if (status >= 500 && !(error instanceof FreeholdError)) console.error(error);
    return c.json(body, status as 400);
  });

  return app;
}
