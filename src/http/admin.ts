import type { Hono } from "hono";
import { z } from "zod";
import { FreeholdError } from "../core/errors.js";
import type { AppEnv } from "./appEnv.js";
import type { HttpControl, KeyChanges } from "./control.js";
import { guard } from "./guard.js";
import { parseBody } from "./validate.js";

/** What the console's routes and evaluations pages read (main.ts adapts the router and the evaluation store). */
export interface ConsoleSources {
  routes(): object[];
  recentDecisions(limit: number): object[];
  /** From the control store (SQLite or PostgreSQL), hence a promise. */
  evalRuns(limit: number): Promise<object[]>;
  /** A run's self-contained HTML report; undefined when no run has that id. */
  evalReport(id: string): Promise<string | undefined>;
}

const count = z.number().int().min(0).nullable().optional();

const keyFields = z
  .object({
    models: z.array(z.string().min(1).max(200)).max(1000).nullable().optional(),
    admin: z.boolean().optional(),
    rpm: count,
    tpm: count,
    max_concurrent: count,
    daily_tokens: count,
    monthly_tokens: count,
    budget_usd: z.number().min(0).nullable().optional(),
    expires: z.string().min(1).max(40).nullable().optional(),
    local_only: z.boolean().optional(),
    store_content: z.boolean().optional(),
    content_retention_days: count,
    why: z.string().max(500).optional(),
  })
  .strict();

const keySchema = keyFields.extend({ name: z.string().min(1).max(64) }).strict();
// A change names the key in the URL; `why` goes to the audit trail with the change.
const keyUpdateSchema = keyFields.omit({ why: true }).strict();

const usageSchema = z
  .object({
    by: z.string().max(100).optional(),
    since: z.string().max(40).optional(),
    key: z.string().max(64).optional(),
    format: z.enum(["json", "csv"]).optional(),
  })
  .strict();

const revokeSchema = z.object({ why: z.string().max(500).optional() }).strict();

const auditSchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(10_000).optional(),
    action: z.string().max(100).optional(),
    actor: z.string().max(100).optional(),
  })
  .strict();

const listSchema = z.object({ limit: z.coerce.number().int().min(1).max(1000).optional() }).strict();

/** The API's snake_case key fields as the control plane's KeyChanges (absent fields stay absent: unchanged). */
function keyChanges(body: z.infer<typeof keyUpdateSchema>): KeyChanges {
  const {
    max_concurrent,
    daily_tokens,
    monthly_tokens,
    budget_usd,
    local_only,
    store_content,
    content_retention_days,
    ...rest
  } = body;
  return {
    ...rest,
    ...(max_concurrent !== undefined ? { maxConcurrent: max_concurrent } : {}),
    ...(daily_tokens !== undefined ? { dailyTokens: daily_tokens } : {}),
    ...(monthly_tokens !== undefined ? { monthlyTokens: monthly_tokens } : {}),
    ...(budget_usd !== undefined ? { budgetUsd: budget_usd } : {}),
    ...(local_only !== undefined ? { localOnly: local_only } : {}),
    ...(store_content !== undefined ? { storeContent: store_content } : {}),
    ...(content_retention_days !== undefined ? { contentRetentionDays: content_retention_days } : {}),
  };
}

function actor(c: { get(name: "context"): AppEnv["Variables"]["context"] }): string {
  const key = c.get("context").key;
  return key ? `key:${key.name}` : "anonymous (open loopback server)";
}

/** /admin/* and /metrics: usage, keys, the audit trail, routes and evaluations over HTTP (admin keys only). */
export function registerAdminRoutes(app: Hono<AppEnv>, control: HttpControl, sources?: ConsoleSources): void {
  app.get("/metrics", guard("admin"), async (c) =>
    c.body(await control.metrics.text(), 200, { "content-type": control.metrics.contentType }),
  );

  app.get("/admin/usage", guard("admin"), async (c) => {
    const query = parseBody(usageSchema, c.req.query());
    const usage = await control.admin.usage(query);
    if (query.format === "csv") return c.body(usage.csv(), 200, { "content-type": "text/csv; charset=utf-8" });
    return c.json({ object: "list", data: usage.data });
  });

  app.get("/admin/keys", guard("admin"), async (c) =>
    c.json({ object: "list", data: await control.admin.listKeys(c.req.query("revoked") === "true") }),
  );

  // Key changes record their own audit entries (key.create, key.update, key.revoke) with the limits set.
  app.post("/admin/keys", guard("admin", { audit: false }), async (c) => {
    const { name, why, ...fields } = parseBody(keySchema, await c.get("json")());
    return c.json(await control.admin.createKey(name, keyChanges(fields), actor(c), why), 201);
  });

  app.patch("/admin/keys/:id", guard("admin", { audit: false }), async (c) => {
    const body = parseBody(keyUpdateSchema, await c.get("json")());
    return c.json(await control.admin.updateKey(c.req.param("id"), keyChanges(body), actor(c)));
  });

  app.post("/admin/keys/:id/revoke", guard("admin", { audit: false }), async (c) => {
    const body = parseBody(revokeSchema, await c.get("json")());
    return c.json(await control.admin.revokeKey(c.req.param("id"), actor(c), body.why));
  });

  app.get("/admin/audit", guard("admin"), async (c) => {
    const query = parseBody(auditSchema, c.req.query());
    const trail = await control.admin.auditTrail(query.limit ?? 100, {
      ...(query.action ? { action: query.action } : {}),
      ...(query.actor ? { actor: query.actor } : {}),
    });
    return c.json(trail);
  });

  app.get("/admin/audit/verify", guard("admin"), async (c) => c.json(await control.admin.verifyAudit()));

  if (!sources) return;
  app.get("/admin/routes", guard("admin"), (c) => {
    const query = parseBody(listSchema, c.req.query());
    return c.json({ routes: sources.routes(), recent_decisions: sources.recentDecisions(query.limit ?? 50) });
  });

  app.get("/admin/evals", guard("admin"), async (c) => {
    const query = parseBody(listSchema, c.req.query());
    return c.json({ object: "list", data: await sources.evalRuns(query.limit ?? 20) });
  });

  app.get("/admin/evals/:id/report", guard("admin"), async (c) => {
    const html = await sources.evalReport(c.req.param("id"));
    if (html === undefined)
      throw new FreeholdError(`No evaluation run has the id ${c.req.param("id")}; GET /admin/evals lists them`, {
        code: "eval_run_not_found",
        status: 404,
        type: "not_found_error",
      });
    // The report is self-contained (inline CSS and SVG, no scripts): a sandboxing CSP keeps it that way.
    return c.html(html, 200, {
      "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox",
    });
  });
}
