import type { ChatEvent, GenerateRequest, ModelPort, RoutedEvent } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import type { MeterTarget } from "../core/metering.js";
import { authorized } from "./authorize.js";
import { promptTokenBound, tokenizedPromptBound } from "./bounds.js";
import { metered } from "./metering.js";
import { classified } from "./policy.js";
import type { Generation, ProfileSource, RequestMeter, RoutingPort } from "./ports.js";
import { profiled } from "./profile.js";
import { routed } from "./route.js";

export interface PipelinePorts {
  /** The local engine: it tokenizes prompts for an exact bound. */
  local: ModelPort;
  routing: RoutingPort;
  meter: RequestMeter;
  profiles: ProfileSource;
}

/**
 * One generation, as every API and the tool loop get it: authorize (the key's model scope) → apply the profile →
 * bound and reserve → policy (the router classifies each target's exact outgoing body) → route (pick, retry, fall
 * back) → settle, when the stream ends, with the target the router says served it.
 * Every stage is always there; without a control plane or routing table their null ports stand in (ports.ts).
 */
export function generationPipeline(ports: PipelinePorts): Generation<ChatEvent> {
  const route: Generation<RoutedEvent> = classified(ports.routing, routed(ports.routing));
  const bound = (request: GenerateRequest, context: RequestContext, candidates: MeterTarget[]) =>
    promptBound(ports, request, context, candidates);
  const meter = metered(
    ports.meter,
    { candidates: (model) => ports.routing.candidates(model), promptBound: bound },
    route,
  );
  return authorized(profiled(ports.profiles, meter));
}

/** Tokenizing costs a round trip to the runner: only keys whose limits count tokens get the exact bound. */
async function promptBound(
  ports: PipelinePorts,
  request: GenerateRequest,
  context: RequestContext,
  candidates: MeterTarget[],
): Promise<number> {
  if (!(await ports.meter.boundsTokens?.(context))) return promptTokenBound(request);
  return tokenizedPromptBound(ports.local, ports.profiles, request, candidates);
}
