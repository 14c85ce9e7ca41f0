import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { ServerError } from "../core/errors.js";
import type { Access, AccessDeclaration, AppEnv } from "./appEnv.js";

export type { Access, AccessDeclaration } from "./appEnv.js";

const declarationMark = Symbol("freehold.access");
const appWideMark = Symbol("freehold.app-wide");

type Marked = { [declarationMark]?: AccessDeclaration; [appWideMark]?: true };

const strictness: Record<Access, number> = { public: 0, key: 1, admin: 2 };

/**
 * The first handler of every route: `app.post("/admin/keys", guard("admin"), handler)`. The access middleware
 * (auth.ts) reads it from the matched route and authorizes before any route code runs; a matched route whose first
 * handler is not a guard is refused (500), so a route cannot be added without saying who may call it.
 */
export function guard(access: Access, options: { audit?: boolean } = {}): MiddlewareHandler<AppEnv> {
  const declaration: AccessDeclaration = { access, audit: options.audit ?? access === "admin" };
  const middleware: MiddlewareHandler<AppEnv> & Marked = async (c, next) => {
    // Reached only after the access middleware authorized this request; without it (an app assembled by hand),
    // fail closed rather than serve unchecked.
    if (!c.get("access"))
      throw new ServerError(
        "this route's guard ran without the access middleware that authorizes it",
        "access_unchecked",
        false,
      );
    await next();
  };
  middleware[declarationMark] = declaration;
  return middleware;
}

/** Marks a middleware registered with `app.use("*", …)` as app-wide plumbing (runs for every request, guards nothing). */
export function appWide<T extends MiddlewareHandler<AppEnv>>(middleware: T): T {
  (middleware as Marked)[appWideMark] = true;
  return middleware;
}

export function declarationOf(handler: unknown): AccessDeclaration | undefined {
  return (handler as Marked | undefined)?.[declarationMark];
}

export function isAppWide(handler: unknown): boolean {
  return (handler as Marked | undefined)?.[appWideMark] === true;
}

interface RouteEntry {
  method: string;
  path: string;
  handler: unknown;
}

/**
 * What the matched routes of a request need: undefined when only app-wide middleware matched (a 404 follows);
 * otherwise the strictest guard among them, provided the first route-specific handler is a guard.
 * Throws when it is not: a route without a declaration is a programming error, and it must not be served.
 */
export function requiredAccess(routes: readonly RouteEntry[]): AccessDeclaration | undefined {
  const specific = routes.filter((route) => !isAppWide(route.handler));
  const first = specific[0];
  if (!first) return undefined;
  if (!declarationOf(first.handler))
    throw new ServerError(
      `the route ${first.method} ${first.path} declares no access guard; register it as app.${first.method.toLowerCase()}(path, guard("public" | "key" | "admin"), handler) (see AGENTS.md)`,
      "route_without_guard",
      false,
    );
  let strictest: AccessDeclaration | undefined;
  for (const route of specific) {
    const declared = declarationOf(route.handler);
    if (!declared) continue;
    if (!strictest || strictness[declared.access] > strictness[strictest.access]) strictest = declared;
    else if (declared.access === strictest.access && declared.audit) strictest = declared;
  }
  return strictest;
}

/** The declaration that applies to this request, read from the routes Hono matched (the decoded path it routes on). */
export function matchedAccess(c: Context): AccessDeclaration | undefined {
  return requiredAccess(matchedRoutes(c));
}
