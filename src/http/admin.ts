import type { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "./app.js";
import type { HttpControl } from "./control.js";
import { guard } from "./guard.js";
import { parseBody } from "./validate.js";

const count = z.number().int().min(0).nullable().optional();

const keySchema = z
  .object({
    name: z.string().min(1).max(64),
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

const usageSchema = z
  .object({
    by: z.string().max(100).optional(),
    since: z.string().max(40).optional(),
    key: z.string().max(64).optional(),
    format: z.enum(["json", "csv"]).optional(),
  })
  .strict();

const revokeSchema = z.object({ why: z.string().max(500).optional() }).strict();

const auditSchema = z.object({ limit: z.coerce.number().int().min(1).max(10_000).optional() }).strict();

function actor(c: { get(name: "context"): AppEnv["Variables"]["context"] }): string {
  const key = c.get("context").key;
  return key ? `key:${key.name}` : "anonymous (open loopback server)";
}

/** /admin/* and /metrics: usage, keys and the audit trail over HTTP (admin keys only, declared per route). */
export function registerAdminRoutes(app: Hono<AppEnv>, control: HttpControl): void {
  app.get("/metrics", guard("admin"), async (c) =>
    c.body(await control.metrics.text(), 200, { "content-type": control.metrics.contentType }),
  );

  app.get("/admin/usage", guard("admin"), (c) => {
    const query = parseBody(usageSchema, c.req.query());
    const usage = control.admin.usage(query);
    if (query.format === "csv") return c.body(usage.csv(), 200, { "content-type": "text/csv; charset=utf-8" });
    return c.json({ object: "list", data: usage.data });
  });

  app.get("/admin/keys", guard("admin"), (c) =>
    c.json({ object: "list", data: control.admin.listKeys(c.req.query("revoked") === "true") }),
  );

  app.post("/admin/keys", guard("admin", { audit: false }), async (c) => {
    const body = parseBody(keySchema, await c.get("json")());
    const {
      name,
      why,
      max_concurrent,
      daily_tokens,
      monthly_tokens,
      budget_usd,
      local_only,
      store_content,
      content_retention_days,
      ...rest
    } = body;
    const created = control.admin.createKey(
      name,
      {
        ...rest,
        ...(max_concurrent !== undefined ? { maxConcurrent: max_concurrent } : {}),
        ...(daily_tokens !== undefined ? { dailyTokens: daily_tokens } : {}),
        ...(monthly_tokens !== undefined ? { monthlyTokens: monthly_tokens } : {}),
        ...(budget_usd !== undefined ? { budgetUsd: budget_usd } : {}),
        ...(local_only !== undefined ? { localOnly: local_only } : {}),
        ...(store_content !== undefined ? { storeContent: store_content } : {}),
        ...(content_retention_days !== undefined ? { contentRetentionDays: content_retention_days } : {}),
      },
      actor(c),
      why,
    );
    return c.json(created, 201);
  });

  app.post("/admin/keys/:id/revoke", guard("admin", { audit: false }), async (c) => {
    const body = parseBody(revokeSchema, await c.get("json")());
    return c.json(control.admin.revokeKey(c.req.param("id"), actor(c), body.why));
  });

  app.get("/admin/audit", guard("admin"), (c) => {
    const query = parseBody(auditSchema, c.req.query());
    const trail = control.admin.auditTrail(query.limit ?? 100);
    return c.json(trail);
  });
}
