import type { ChatEvent, GenerateRequest } from "../core/chat.js";
import type { PreparedCall } from "../core/egress.js";
import { applyProfile, type ProfileSource } from "../core/profile.js";
import type { Decision } from "./decisions.js";
import { type EgressPolicy, permissionError } from "./egressPolicy.js";
import type { Route, TargetState } from "./table.js";

export interface Plan {
  tiers: TargetState[][];
  /** How to start each target that may be tried: its prepared call, with the checked body for a remote one. */
  start: Map<TargetState, (signal: AbortSignal) => AsyncIterable<ChatEvent>>;
}

export function estimateTokens(request: GenerateRequest): number {
  const texts =
    request.kind === "completion"
      ? [typeof request.prompt === "string" ? request.prompt : ""]
      : request.messages.map((message) => message.content);
  return Math.max(1, Math.ceil(texts.join("\n").length / 4));
}

/** A call prepared by a local provider: nothing leaves, it just runs. */
export function runLocal<T>(call: PreparedCall<T>, signal?: AbortSignal): T {
  if (call.outgoing !== null) throw new Error("a remote call reached runLocal without a privacy check");
  return call.run(signal);
}

/** Images a request carries (all messages). */
export function imageCount(request: GenerateRequest): number {
  if (request.kind !== "chat") return 0;
  return request.messages.reduce((sum, message) => sum + (message.images?.length ?? 0), 0);
}

/**
 * Prepares every target of the route and checks each remote one's exact outgoing body against the policy:
 * what may not leave is left out (and said why), what must be redacted is. Throws when nothing remains.
 */
export async function planRoute(
  route: Route,
  request: GenerateRequest,
  policy: EgressPolicy,
  decision: Decision,
  profiles: ProfileSource,
): Promise<Plan> {
  const start: Plan["start"] = new Map();
  const tiers: TargetState[][] = [];
  const reasons = new Set<string>();
  for (const tier of route.tiers) {
    const kept: TargetState[] = [];
    for (const target of tier) {
      // The router passes each target its own model name; a remote provider builds its whole body from it.
      const prepared = target.provider.prepareGenerate(await forTarget(request, target, profiles));
      if (prepared.outgoing === null) {
        start.set(target, (signal) => prepared.run(signal));
        kept.push(target);
        continue;
      }
      const verdict = await policy.check(prepared.outgoing, imageCount(request));
      if (!verdict.send) {
        decision.excluded.push({ provider: target.provider.name, model: target.model, reason: verdict.reason });
        reasons.add(verdict.reason);
        continue;
      }
      start.set(target, (signal) => prepared.send(verdict.body, signal));
      kept.push(target);
    }
    if (kept.length > 0) tiers.push(kept);
  }
  for (const reason of reasons) decision.explanation.push(`remote targets excluded: ${reason}`);
  if (tiers.length === 0) {
    const remotes = [...new Set(route.tiers.flat().map((target) => target.provider.name))].join(", ");
    const why = [...reasons].join("; ");
    const offline = policy.forbidden?.code === "egress_forbidden";
    throw permissionError(
      `Route ${route.name} has only remote targets (${remotes}) and ${why}, so nothing was sent. ${offline ? "Run without --offline, or add" : "Add"} a local target to the route${offline ? "" : " or send the request without that data"}.`,
      policy.forbidden?.code ?? (why.includes("could not be scanned") ? "privacy_unscannable" : "privacy_local_only"),
    );
  }
  return { tiers, start };
}

/**
 * The request as one target gets it: its own model name, and for a model on the local engine that is not the name
 * asked for (whose profile the gateway applied), that model's own profile. Nothing leaves for a local target, so
 * its profile needs no privacy check; it is applied here, as the engine did before the gateway's pipeline.
 */
export async function forTarget<R extends GenerateRequest>(
  request: R,
  target: TargetState,
  profiles: ProfileSource,
): Promise<R> {
  const own = { ...request, model: target.model };
  if (target.provider.kind !== "local" || target.model === request.model) return own;
  return applyProfile(own, await profiles.profile(target.model)) as R;
}
