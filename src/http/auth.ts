import type { Context, Hono } from "hono";
import type { CallerKey } from "../core/context.js";
import { PermissionError } from "../core/errors.js";
import type { AppEnv } from "./appEnv.js";
import { isStreamed, onBodyEnd } from "./bodyEnd.js";
import type { HttpControl } from "./control.js";
import { type AccessDeclaration, appWide, matchedAccess } from "./guard.js";
import type { NodeResponse } from "./nodeResponse.js";

/** The secret a client presented: `Authorization: Bearer …` (OpenAI, Ollama clients) or `x-api-key` (Anthropic). */
export function presentedSecret(headers: Headers): string | undefined {
  const authorization = headers.get("authorization");
  const bearer = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization)?.[1] : undefined;
  return bearer ?? headers.get("x-api-key")?.trim() ?? undefined;
}

function actorOf(key: CallerKey | undefined): string {
  return key ? `key:${key.name}` : "anonymous (open loopback server)";
}

/** What an administrative request acted on, from its JSON body (a model name), for the audit trail. */
async function auditTarget(c: Context<AppEnv>): Promise<string | undefined> {
  const body = (await c
    .get("json")()
    .catch(() => undefined)) as Record<string, unknown> | undefined;
  const pick = (name: string) => (typeof body?.[name] === "string" ? (body[name] as string) : undefined);
  const source = pick("source");
  return source ? `${source} -> ${pick("destination") ?? ""}` : (pick("model") ?? pick("name"));
}

/**
 * The rate-limit headers, or none when the store cannot say: the answer is already made (and metered), so a store
 * that went away after it must not turn it into an error.
 */
async function rateHeaders(control: HttpControl, key: CallerKey): Promise<Record<string, string>> {
  try {
    return await control.rateLimitHeaders(key);
  } catch {
    return {};
  }
}

/**
 * Reports every finished request (rate-limit headers, ledger bytes and status, metrics, one log line,
 * the audit entry of an administrative action). Registered before the access middleware, so refusals pass through
 * it like any other answer.
 */
export function registerReportingMiddleware(app: Hono<AppEnv>, control: HttpControl): void {
  app.use(
    "*",
    appWide(async (c, next) => {
      const started = performance.now();
      await next();
      const context = c.get("context");
      const method = c.req.method;
      // The request id on every answer, streamed ones included (the ledger row is found by it).
      const headers = new Headers({ "x-request-id": context.requestId });
      if (context.key)
        for (const [name, value] of Object.entries(await rateHeaders(control, context.key))) headers.set(name, value);
      const status = c.res.status;
      // Reads are not actions; the matched route's declaration says whether this one is audited here.
      if (c.get("access")?.audit && method !== "GET" && method !== "HEAD" && status < 400) {
        const target = await auditTarget(c);
        await control.audit.record({
          actor: actorOf(context.key),
          action: `${method} ${context.route}`,
          requestId: context.requestId,
          ...(target ? { target } : {}),
        });
      }
      let finished = false;
      const finish = (bytes: number) => {
        if (finished) return;
        finished = true;
        control.completeRequest({
          method,
          path: context.route,
          status,
          durationMs: Math.round((performance.now() - started) * 10) / 10,
          requestId: context.requestId,
          api: context.api,
          key: context.key?.name ?? null,
          bytes,
        });
      };
      if (isStreamed(c.res)) {
        const body = c.res.body;
        if (body) {
          const response = new Response(onBodyEnd(body, finish), c.res);
          for (const [name, value] of headers) response.headers.set(name, value);
          c.res = response;
          return;
        }
      }
      const outgoing = (c.env as { outgoing?: NodeResponse } | undefined)?.outgoing;
      if (outgoing && typeof outgoing.once === "function") {
        // Served by @hono/node-server: leave the answer untouched (the adapter writes a string body in one go, and
        // reading it here would cost a copy) and take its size from the Content-Length the adapter sets.
        for (const [name, value] of headers) c.res.headers.set(name, value);
        const sent = () => finish(Number(outgoing.getHeader("content-length") ?? 0) || 0);
        outgoing.once("finish", sent);
        outgoing.once("close", sent);
        return;
      }
      const buffer = c.res.body ? await c.res.arrayBuffer() : null;
      const response = new Response(buffer, c.res);
      for (const [name, value] of headers) response.headers.set(name, value);
      c.res = response;
      finish(buffer?.byteLength ?? 0);
    }),
  );
}

/** Whether a caller with `key` may call a route declared `access` (throws the refusal otherwise). */
async function authorize(
  declared: AccessDeclaration,
  control: HttpControl | undefined,
  c: Context<AppEnv>,
): Promise<void> {
  if (declared.access === "public" || !control) return;
  const context = c.get("context");
  const key = await control.authenticate(presentedSecret(c.req.raw.headers));
  if (key) context.key = key;
  if (declared.access === "admin" && !key?.admin && (await control.requiresKeys()))
    throw new PermissionError(
      `${c.req.method} ${context.route} needs an admin key; key ${key?.name ?? ""} is not one (create one with \`freehold keys create --admin\`)`,
      "admin_key_required",
    );
}

/**
 * Authorizes each request by the guard declared on the route Hono matched (guard.ts), before any route code runs:
 * the router's decoded path and the check can never disagree about which route this is. A matched route without a
 * guard is refused. Without a control plane (an embedded app with no keys), every declared route is open.
 */
export function registerAccessMiddleware(app: Hono<AppEnv>, control: HttpControl | undefined): void {
  app.use(
    "*",
    appWide(async (c, next) => {
      const declared = matchedAccess(c);
      if (!declared) return next();
      await authorize(declared, control, c);
      c.set("access", declared);
      return next();
    }),
  );
}
