import type { Hono } from "hono";
import type { RequestContext } from "../core/context.js";
import { FreeholdError } from "../core/errors.js";
import type { AppEnv } from "./appEnv.js";
import type { HttpControl } from "./control.js";
import { guard } from "./guard.js";

/**
 * Whether the caller may read the routing decision of request `requestId`: an admin key, anyone on a server without
 * keys, otherwise only the key that made the request (matched by key id in the ledger, so a later key that reuses a
 * revoked key's name does not inherit its history). A request with no ledger row yet (still streaming) or made by
 * another key is answered as unknown, so ids cannot be probed.
 */
async function mayRead(requestId: string, context: RequestContext, control: HttpControl | undefined): Promise<boolean> {
  if (!control || context.key?.admin || !(await control.requiresKeys())) return true;
  const owner = await control.requestKeyId(requestId);
  return owner !== undefined && owner !== null && owner === context.key?.id;
}

/** GET /freehold/explain/{id}: why a request went where it did (`freehold explain`). */
export function registerExplainRoute(
  app: Hono<AppEnv>,
  decisions: { get(requestId: string): unknown | Promise<unknown> } | undefined,
  control: HttpControl | undefined,
): void {
  app.get("/freehold/explain/:id", guard("key"), async (c) => {
    const id = c.req.param("id");
    const decision = (await mayRead(id, c.get("context"), control)) ? await decisions?.get(id) : undefined;
    if (!decision)
      throw new FreeholdError(
        `No routing decision is kept for request ${id} that your key may read: it is unknown, made with another key (an admin key reads all), or older than the in-memory log holds`,
        { code: "decision_not_found", status: 404, type: "not_found_error" },
      );
    return c.json(decision);
  });
}
