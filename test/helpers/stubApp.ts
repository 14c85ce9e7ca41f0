import type { Hono } from "hono";
import type { ControlPlane } from "../../src/control/controlPlane.js";
import { httpFacade } from "../../src/control/httpFacade.js";
import type { ModelCatalog, ModelControl, ModelSupply } from "../../src/core/catalog.js";
import { FreeholdError } from "../../src/core/errors.js";
import type { Gateway } from "../../src/gateway/gateway.js";
import { type AppOptions, createApp } from "../../src/http/app.js";
import type { AppEnv } from "../../src/http/appEnv.js";
import { isAppWide } from "../../src/http/guard.js";
import { projectRoot } from "./paths.js";

/** Every call that reaches a dependency behind a route (model store, engine, hub, admin use cases) is recorded. */
export const reached: string[] = [];

export function recorder<T>(name: string, answer?: (property: string) => unknown): T {
  return new Proxy(
    {},
    {
      get(_, property) {
        if (property === "then" || typeof property === "symbol") return undefined;
        return (..._args: unknown[]) => {
          reached.push(`${name}.${property}`);
          if (answer) return answer(property);
          // A FreeholdError, so the app answers 500 without logging a stack for each of thousands of calls.
          throw new FreeholdError(`stub ${name}.${property} reached`, {
            code: "stub_reached",
            status: 500,
            type: "server_error",
          });
        };
      },
    },
  ) as T;
}

export function buildApp(control: ControlPlane, overrides: Partial<AppOptions> = {}): Hono<AppEnv> {
  const facade = httpFacade(control);
  return createApp({
    gateway: recorder<Gateway>("gateway"),
    health: recorder("health", () => ({ ready: true, status: "ok", detail: {} })),
    loadedModels: recorder("loadedModels", () => []),
    models: recorder<ModelControl>("models"),
    catalog: recorder<ModelCatalog>("catalog"),
    supply: recorder<ModelSupply>("supply"),
    decisions: recorder("decisions", () => undefined),
    version: "0.0.0-test",
    listenHost: "127.0.0.1",
    allowedHosts: [],
    maxBodyBytes: 1 << 20,
    // A one-file console, so the static routes answer whether or not `npm run build:console` has run.
    consoleDir: `${projectRoot}/test/fixtures/console`,
    consoleSources: recorder("consoleSources", () => []),
    control: {
      ...facade,
      metrics: {
        contentType: "text/plain; version=0.0.4",
        text: () => {
          reached.push("metrics.text");
          return Promise.resolve("");
        },
      },
      admin: recorder("admin", (property) =>
        property === "listKeys" ? [] : { data: [], csv: () => "", entries: [], verification: {} },
      ),
    },
    ...overrides,
  });
}

export interface Route {
  method: string;
  path: string;
}

/** The routes an app registers (one per method and path, app-wide middleware left out). */
export function routesOf(app: Hono<AppEnv>): Route[] {
  const seen = new Map<string, Route>();
  for (const route of app.routes) {
    if (isAppWide(route.handler)) continue;
    seen.set(`${route.method} ${route.path}`, { method: route.method, path: route.path });
  }
  return [...seen.values()];
}

/** A concrete path for a route pattern (`:id{.+}` → a value). */
export function concrete(pattern: string): string {
  return pattern.replace(/:(\w+)(\{[^}]*\})?/g, "stories").replace(/\*$/, "index.html");
}
