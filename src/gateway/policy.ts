import type { RoutedEvent } from "../core/chat.js";
import type { CheckedRequest } from "../core/egress.js";
import type { Generation, RoutingPort } from "./ports.js";

/** What runs a checked request: the route stage (route.ts). */
export type Serve = (checked: CheckedRequest, signal?: AbortSignal) => AsyncIterable<RoutedEvent>;

/**
 * The policy stage: the request, as the profile and the reservation left it, is planned by the router, which
 * classifies the exact body each remote target would send (a provider builds its own JSON, so the check is per
 * target) and applies offline, a local-only key and the route's policy: a target that may not see it is left out,
 * findings are redacted, or the request is blocked. Nothing reaches the route stage unchecked.
 */
export function classified(routing: RoutingPort, serve: Serve): Generation<RoutedEvent> {
  return async function* classifiedGeneration(request, context, signal) {
    yield* serve(await routing.plan(request, context), signal);
  };
}
