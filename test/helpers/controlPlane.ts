import { type ControlPlane, callerKey } from "../../src/control/controlPlane.js";
import type { RequestContext } from "../../src/core/context.js";

let counter = 0;

/** A request's context carrying the key `keyName` as the access middleware sets it, with a fresh request id. */
export function keyContext(control: ControlPlane, keyName: string, route: string): RequestContext {
  return {
    requestId: `req_test_${++counter}`,
    api: "openai",
    route,
    key: callerKey(control.sqlite.keys.get(keyName)),
  };
}

/** What a one-token local answer settles with. */
export const oneTokenSettlement = {
  promptTokens: 1,
  completionTokens: 1,
  cachedTokens: 0,
  timeToFirstTokenMs: 1,
  status: 200,
} as const;
