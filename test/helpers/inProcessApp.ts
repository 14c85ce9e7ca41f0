import { Hono } from "hono";
import type { ModelCatalog, ModelControl } from "../../src/core/catalog.js";
import type { Gateway } from "../../src/gateway/gateway.js";
import { type AppOptions, createApp } from "../../src/http/app.js";
import type { AppEnv } from "../../src/http/appEnv.js";
import { registerAccessMiddleware } from "../../src/http/auth.js";
import { registerErrorHandler } from "../../src/http/errorResponse.js";
import { appWide } from "../../src/http/guard.js";

/** An app answering `request(url, init)` in process, with no socket, as Hono's app and freehold's httpApp() do. */
export interface InProcessApp {
  request(url: string, init: RequestInit): Response | Promise<Response>;
}

/** POSTs `body` as JSON to `path` of an in-process app. */
export function postJsonTo(app: InProcessApp, path: string, body: unknown): Promise<Response> {
  return Promise.resolve(
    app.request(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }),
  );
}

/**
 * The whole app (createApp) in process around `gateway`, for tests of what a request reaches through it: the server
 * is healthy with nothing loaded and an empty catalog; loading, unloading or describing a model throws, since a
 * test that gets there has gone wrong. `overrides` replaces any option (maxBodyBytes, …).
 */
export function gatewayApp(gateway: Gateway, overrides: Partial<AppOptions> = {}): Hono<AppEnv> {
  const unused = () => {
    throw new Error("not called");
  };
  return createApp({
    gateway,
    health: { health: () => ({ ready: true, status: "ok", detail: {} }) },
    loadedModels: { loadedModels: () => [] },
    models: { load: unused, unload: unused } as unknown as ModelControl,
    catalog: { list: async () => [], describe: unused, copy: unused, remove: unused } as unknown as ModelCatalog,
    listenHost: "127.0.0.1",
    allowedHosts: [],
    maxBodyBytes: 1 << 20,
    version: "0.0.0",
    ...overrides,
  });
}

/**
 * Only the API routes `register` adds, on a bare Hono app: what createApp's request scope gives a route (the JSON
 * body, the abort signal, a request context) is set by hand, access is open (no keys), and errors are answered in
 * each API's shape by the app's own error handler. For tests of one API layer on a stand-in model port.
 */
export function apiRoutesApp(register: (app: Hono<AppEnv>) => void): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.use(
    "*",
    appWide(async (c, next) => {
      c.set("json", () => c.req.json());
      c.set("signal", c.req.raw.signal);
      c.set("context", { requestId: "test", api: "openai", route: c.req.path });
      await next();
    }),
  );
  // Routes carry guards, which refuse to serve unless the access middleware authorized the request first.
  registerAccessMiddleware(app, undefined);
  register(app);
  registerErrorHandler(app);
  return app;
}
