import type { Hono } from "hono";
import { z } from "zod";
import { FreeholdError } from "../core/errors.js";
import type { AppEnv } from "./appEnv.js";
import type { HttpControl } from "./control.js";
import { guard } from "./guard.js";
import { parseBody } from "./validate.js";

const usageSchema = z
  .object({
    by: z.string().max(100).optional(),
    since: z.string().max(40).optional(),
    format: z.enum(["json", "csv"]).optional(),
  })
  .strict();

/**
 * What any caller may read about itself (the console's sign-in, playground and "my usage"): who the key is, its
 * own usage, and the ledger row of one of its own requests. An admin key (or an open server) sees every key's.
 */
export function registerAccountRoutes(app: Hono<AppEnv>, control: HttpControl): void {
  app.get("/freehold/whoami", guard("key"), async (c) => {
    const key = c.get("context").key;
    const keysRequired = await control.requiresKeys();
    return c.json({
      keys_required: keysRequired,
      key: key ? { id: key.id, name: key.name } : null,
      // With no keys ever created the server is open (loopback only), and whoever reaches it administers it.
      admin: keysRequired ? key?.admin === true : true,
    });
  });

  app.get("/freehold/usage", guard("key"), async (c) => {
    const query = parseBody(usageSchema, c.req.query());
    const key = c.get("context").key;
    // A plain key sees its own lines only, whatever it asks for; its name is not a filter it can change.
    const own = key && !key.admin ? { key: key.name } : {};
    const usage = await control.admin.usage({
      ...(query.by ? { by: query.by } : {}),
      ...(query.since ? { since: query.since } : {}),
      ...own,
    });
    if (query.format === "csv") return c.body(usage.csv(), 200, { "content-type": "text/csv; charset=utf-8" });
    return c.json({ object: "list", data: usage.data });
  });

  app.get("/freehold/requests/:id", guard("key"), async (c) => {
    const key = c.get("context").key;
    const row = await control.admin.requestRow(c.req.param("id"));
    // Another key's request is answered like an unknown one: its existence is not this caller's business.
    if (!row || (key && !key.admin && row.keyName !== key.name))
      throw new FreeholdError(
        `No request ${c.req.param("id")} of yours is in the ledger (the id is the x-request-id header of an answer)`,
        { code: "request_not_found", status: 404, type: "not_found_error" },
      );
    return c.json(row);
  });
}
