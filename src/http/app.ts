import { Hono } from "hono";
import { z } from "zod";
import type { ModelCatalog, ModelControl, ModelSupply } from "../core/catalog.js";
import type { ImageFetcher } from "../core/imageFetch.js";
import type { Gateway } from "../gateway/gateway.js";
import { registerAccountRoutes } from "./account.js";
import { type ConsoleSources, registerAdminRoutes } from "./admin.js";
import { registerAnthropicRoutes } from "./anthropic/routes.js";
import type { AppEnv } from "./appEnv.js";
import { registerAccessMiddleware, registerReportingMiddleware } from "./auth.js";
import { registerConsoleRoutes } from "./console.js";
import type { HttpControl } from "./control.js";
import { registerErrorHandler, setRetryAfter } from "./errorResponse.js";
import { registerExplainRoute } from "./explain.js";
import { guard } from "./guard.js";
import { registerModelRoutes } from "./models.js";
import { type LoadedModelsSource, registerOllamaPs } from "./ollama/ps.js";
import { registerOllamaRoutes } from "./ollama/routes.js";
import { registerOpenAIRoutes } from "./openai/routes.js";
import { registerOriginMiddleware } from "./origins.js";
import { type RequestScopeOptions, registerBodyLimit, registerRequestScope } from "./requestScope.js";
import { registerRerank } from "./rerank.js";
import { registerResponsesRoutes } from "./responses/routes.js";
import { parseBody } from "./validate.js";

const unloadSchema = z.object({ model: z.string().min(1).max(512) });

export interface HealthSource {
  /** "ok" when ready; otherwise why not (model loading, no runner can start). */
  health(): { ready: boolean; status: string; detail: Record<string, unknown> };
}

export interface AppOptions extends RequestScopeOptions {
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
  /** Web origins beyond loopback whose pages may call the API (FREEHOLD_ORIGINS); others are refused (origins.ts). */
  allowedOrigins?: readonly string[];
  /** Keys, limits, ledger, audit and metrics (src/control); absent = an open server with no /admin routes. */
  control?: HttpControl;
  /** Routes and evaluation runs for the console's admin pages (GET /admin/routes, /admin/evals). */
  consoleSources?: ConsoleSources;
  /**
   * Fetches images clients name by http(s) URL (FREEHOLD_IMAGE_FETCH); absent = such URLs are refused with a 400.
   */
  imageFetcher?: ImageFetcher;
  /** The built web console (default dist/console, which `npm ci` builds). */
  consoleDir?: string;
}

/**
 * The HTTP app. Built on web-standard Request/Response, so it can be served by @hono/node-server, embedded via
 * `app.fetch`, and tested with `app.request()` without a socket.
 */
export function createApp(options: AppOptions): Hono<AppEnv> {
  const app = new Hono<AppEnv>();

  registerRequestScope(app, options);
  if (options.control) registerReportingMiddleware(app, options.control);
  registerOriginMiddleware(app, options.allowedOrigins ?? []);
  registerAccessMiddleware(app, options.control);
  registerBodyLimit(app, options.maxBodyBytes);

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
      setRetryAfter(c, 1);
      return c.json({ status: "not-ready", reason: error instanceof Error ? error.message : String(error) }, 503);
    }
  });
  app.get("/", guard("public"), (c) => c.text("freehold is running"));

  registerOpenAIRoutes(app, options.gateway, options.imageFetcher);
  registerModelRoutes(app, options.gateway);
  registerRerank(app, options.gateway);
  registerResponsesRoutes(app, options.gateway, options.imageFetcher);
  registerAnthropicRoutes(app, options.gateway, options.imageFetcher);
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

  registerErrorHandler(app);
  return app;
}
