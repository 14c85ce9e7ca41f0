import type { Serve } from "./policy.js";
import type { RoutingPort } from "./ports.js";

/**
 * The route-and-fall-back stage: the router tries the checked request's targets tier by tier (least loaded first,
 * retries, time-to-first-token limits, breakers) and streams the first that answers, preceded by a `served-by`
 * event that the settle stage charges against.
 */
export function routed(routing: RoutingPort): Serve {
  return (checked, signal) => routing.serve(checked, signal);
}
