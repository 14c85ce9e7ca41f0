import { type ControlPlane, callerKey } from "../../src/control/controlPlane.js";
import type { KeyRecord } from "../../src/control/keys.js";
import type { RequestContext } from "../../src/core/context.js";

let counter = 0;

/** A request's context carrying `key` as the access middleware sets it, with a fresh request id. */
export function requestContext(key: KeyRecord, route: string, idPrefix = "req_test"): RequestContext {
  return { requestId: `${idPrefix}_${++counter}`, api: "openai", route, key: callerKey(key) };
}

/** The same for a key of a SQLite control plane, by name. */
export function keyContext(control: ControlPlane, keyName: string, route: string): RequestContext {
  return requestContext(control.sqlite.keys.get(keyName), route);
}

/** What a one-token local answer settles with. */
export const oneTokenSettlement = {
  promptTokens: 1,
  completionTokens: 1,
  cachedTokens: 0,
  timeToFirstTokenMs: 1,
  status: 200,
} as const;
