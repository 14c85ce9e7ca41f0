import type { ChatEvent, EmbeddingRequest, EmbeddingResult, GenerateRequest, ModelInfo } from "../core/chat.js";
import type { AuditSink, RequestContext } from "../core/context.js";
import type { PreparedCall } from "../core/egress.js";
import { errorFromEvent, InvalidRequestError, isFreeholdError } from "../core/errors.js";
import { UpstreamError } from "../providers/upstream.js";
import { type Decision, DecisionLog } from "./decisions.js";
import { EgressPolicy, permissionError, type Verdict } from "./egressPolicy.js";
import { HealthMonitor } from "./health.js";
import type { Route, RoutingTable, TargetState } from "./table.js";

export interface RouteView {
  name: string;
  policy: string;
  retries: number;
  tiers: {
    provider: string;
    kind: string;
    model: string;
    origin: string | null;
    weight: number;
    healthy: boolean;
    in_flight: number;
    breaker: string;
    breaker_retry_in_ms: number;
  }[][];
}

/**
 * Decides where each request may go and sends it there: routes map a model name to tiers of targets, balanced by
 * least outstanding requests (weighted) among healthy ones, with retries, per-target timeouts, fallback on error,
 * timeout, overload or a stream that drops before its first token, and a circuit breaker per target. Before
 * anything leaves the machine, the exact body each remote provider would send is classified and the privacy policy
 * applied to it (egressPolicy.ts; fails closed).
 */
export class Router {
  private table: RoutingTable;
  private health: HealthMonitor;
  readonly decisions: DecisionLog;

  constructor(table: RoutingTable, options: { audit?: AuditSink; decisionCapacity?: number } = {}) {
    this.table = table;
    this.health = new HealthMonitor(table);
    this.decisions = new DecisionLog(options.decisionCapacity ?? 5000, options.audit);
  }

  /** Swaps the whole table (SIGHUP): requests already running keep the one they started with. */
  reload(table: RoutingTable): void {
    this.health.dispose();
    this.table = table;
    this.health = new HealthMonitor(table);
  }

  get current(): RoutingTable {
    return this.table;
  }

  dispose(): void {
    this.health.dispose();
  }

  /** The live table as the console's routes page shows it: each route's targets with health and breaker state. */
  describe(): RouteView[] {
    return [...this.table.routes.values()].map((route) => ({
      name: route.name,
      policy: route.policy,
      retries: route.retries,
      tiers: route.tiers.map((tier) =>
        tier.map((target) => ({
          provider: target.provider.name,
          kind: target.provider.kind,
          model: target.model,
          origin: target.provider.origin,
          weight: target.weight,
          healthy: target.healthy,
          in_flight: target.outstanding,
          breaker: target.breaker.state,
          breaker_retry_in_ms: target.breaker.retryInMs(),
        })),
      ),
    }));
  }

  generate(request: GenerateRequest, context: RequestContext, signal?: AbortSignal): AsyncIterable<ChatEvent> {
    return this.run(this.table, request, context, signal);
  }

  async embed(request: EmbeddingRequest, context: RequestContext, signal?: AbortSignal): Promise<EmbeddingResult> {
    const table = this.table;
    const route = table.routes.get(request.model);
    if (!route) return runLocal(table.local.prepareEmbed(request), signal);
    // Embeddings go to the route's local targets only: an embedding request is all content, nothing to redact around.
    const target = route.tiers.flat().find((candidate) => !candidate.remote);
    const decision = this.newDecision(context, request.model, route);
    if (!target) {
      decision.outcome = "refused";
      decision.explanation.push("embeddings through a route use its local targets only; this route has none");
      this.decisions.record(decision);
      throw new InvalidRequestError(
        `route ${route.name} has no local target; embeddings through routes stay on this machine`,
        "model",
        "route_no_local_target",
      );
    }
    decision.servedBy = { provider: target.provider.name, model: target.model, remote: false };
    context.servedBy = decision.servedBy;
    decision.outcome = "served";
    this.decisions.record(decision);
    return runLocal(target.provider.prepareEmbed({ ...request, model: target.model }), signal);
  }

  /**
   * Every target a request for `model` might be served by (the local engine when no route has that name), so the
   * control plane can reserve the costliest one before the router has picked: fallbacks never overshoot a budget.
   */
  candidates(model: string): { provider: string; model: string; remote: boolean }[] {
    const route = this.table.routes.get(model);
    if (!route) return [{ provider: "local", model, remote: false }];
    return route.tiers
      .flat()
      .map((target) => ({ provider: target.provider.name, model: target.model, remote: target.remote }));
  }

  /** The local engine's models and every route name (routes answer under the name clients use). */
  async listModels(): Promise<ModelInfo[]> {
    const table = this.table;
    const models = await table.local.listModels();
    const names = new Set(models.map((model) => model.name));
    for (const route of table.routes.keys())
      if (!names.has(route)) models.push({ name: route, created: 0, ownedBy: "freehold-route", contextLength: null });
    return models;
  }

  /**
   * Prompt tokens for a routed name: counted by the route's local model when it has one; else by its first remote
   * target only when the key's and the route's policy let that exact counting body leave (redacted on a redacting
   * route); else estimated (about four characters a token), so counting never sends what generating could not.
   */
  async countTokens(request: GenerateRequest, context: RequestContext): Promise<number> {
    const table = this.table;
    const route = table.routes.get(request.model);
    if (!route) return runLocal(table.local.prepareCountTokens(request));
    const estimate = estimateTokens(request);
    const local = route.tiers.flat().find((target) => !target.remote);
    if (local)
      return runLocal(local.provider.prepareCountTokens({ ...request, model: local.model })).catch(() => estimate);
    const remote = route.tiers.flat()[0]!;
    const prepared = remote.provider.prepareCountTokens({ ...request, model: remote.model });
    if (prepared.outgoing === null) return prepared.run().catch(() => estimate);
    let verdict: Verdict;
    try {
      verdict = await new EgressPolicy(table, route, context).check(prepared.outgoing, imageCount(request));
    } catch (error) {
      // A blocked request is refused when it is sent to generate; counting it just stays here.
      if (isFreeholdError(error) && error.code === "privacy_blocked") return estimate;
      throw error;
    }
    if (!verdict.send) return estimate;
    return prepared.send(verdict.body).catch(() => estimate);
  }

  private newDecision(context: RequestContext, model: string, route: Route | undefined): Decision {
    return {
      requestId: context.requestId,
      at: new Date().toISOString(),
      api: context.api,
      path: context.route,
      key: context.key?.name ?? null,
      model,
      route: route?.name ?? null,
      policy: null,
      findings: {},
      rules: [],
      redacted: null,
      excluded: [],
      attempts: [],
      servedBy: null,
      outcome: "failed",
      explanation: [],
    };
  }

  private async *run(
    table: RoutingTable,
    request: GenerateRequest,
    context: RequestContext,
    signal?: AbortSignal,
  ): AsyncGenerator<ChatEvent> {
    const route = table.routes.get(request.model);
    const decision = this.newDecision(context, request.model, route);
    if (!route) {
      decision.servedBy = { provider: "local", model: request.model, remote: false };
      context.servedBy = decision.servedBy;
      decision.outcome = "served";
      decision.explanation.push(
        `no route is named ${request.model}: the local engine serves it, nothing leaves the machine`,
      );
      this.decisions.record(decision);
      yield* runLocal(table.local.prepareGenerate(request), signal);
      return;
    }
    const policy = new EgressPolicy(table, route, context, decision);
    let plan: Plan;
    try {
      plan = await planRoute(route, request, policy, decision);
    } catch (error) {
      decision.outcome = "refused";
      decision.explanation.push(error instanceof Error ? error.message : String(error));
      this.decisions.record(decision);
      throw error;
    }
    let lastError: unknown;
    for (const tier of plan.tiers) {
      const remaining = [...tier];
      while (remaining.length > 0) {
        const target = pickTarget(remaining, decision);
        if (!target) break;
        remaining.splice(remaining.indexOf(target), 1);
        const start = plan.start.get(target)!;
        for (let attempt = 0; ; attempt++) {
          const started = Date.now();
          const result = await startTarget(target, start, signal);
          if (result.ok) {
            decision.attempts.push({
              provider: target.provider.name,
              model: target.model,
              remote: target.remote,
              outcome: "served",
              ms: Date.now() - started,
            });
            decision.servedBy = { provider: target.provider.name, model: target.model, remote: target.remote };
            // The ledger row and its cost follow where the answer really came from.
            context.servedBy = decision.servedBy;
            decision.outcome = "served";
            decision.explanation.push(
              `served by ${target.label} (${target.remote ? `remote: ${target.provider.origin}` : "local"})${policy.redaction && target.remote ? ", with findings replaced by placeholders" : ""}`,
            );
            this.decisions.record(decision);
            const events = finishTarget(target, result.first, result.iterator, signal);
            yield* target.remote && policy.redaction ? policy.redaction.restoreEvents(events) : events;
            return;
          }
          lastError = result.error;
          const outcome = result.timedOut ? "timeout" : "error";
          decision.attempts.push({
            provider: target.provider.name,
            model: target.model,
            remote: target.remote,
            outcome,
            error: errorText(result.error),
            ms: Date.now() - started,
          });
          if (signal?.aborted) {
            decision.explanation.push("the client went away");
            this.decisions.record(decision);
            // A remote provider may already be billing the prompt: the ledger charges it to where it was sent.
            if (target.remote) context.servedBy = { provider: target.provider.name, model: target.model, remote: true };
            throw result.error;
          }
          if (isClientError(result.error)) {
            decision.explanation.push(
              `${target.label} refused the request itself (${errorText(result.error)}); not retried elsewhere`,
            );
            this.decisions.record(decision);
            throw result.error;
          }
          const wait = retryWait(route, attempt, result.error);
          if (attempt >= route.retries || wait === null || !target.breaker.tryAcquire()) {
            decision.explanation.push(`${target.label} failed (${outcome}: ${errorText(result.error)}); falling back`);
            break;
          }
          decision.explanation.push(`${target.label} failed (${outcome}); retrying in ${wait} ms`);
          await sleep(wait, signal);
        }
      }
    }
    decision.outcome = "failed";
    decision.explanation.push("every target failed or was unavailable");
    this.decisions.record(decision);
    throw finalError(route, lastError);
  }
}

interface Plan {
  tiers: TargetState[][];
  /** How to start each target that may be tried: its prepared call, with the checked body for a remote one. */
  start: Map<TargetState, (signal: AbortSignal) => AsyncIterable<ChatEvent>>;
}

function estimateTokens(request: GenerateRequest): number {
  const texts =
    request.kind === "completion"
      ? [typeof request.prompt === "string" ? request.prompt : ""]
      : request.messages.map((message) => message.content);
  return Math.max(1, Math.ceil(texts.join("\n").length / 4));
}

/** A call prepared by a local provider: nothing leaves, it just runs. */
function runLocal<T>(call: PreparedCall<T>, signal?: AbortSignal): T {
  if (call.outgoing !== null) throw new Error("a remote call reached runLocal without a privacy check");
  return call.run(signal);
}

/** Images a request carries (all messages). */
function imageCount(request: GenerateRequest): number {
  if (request.kind !== "chat") return 0;
  return request.messages.reduce((sum, message) => sum + (message.images?.length ?? 0), 0);
}

/**
 * Prepares every target of the route and checks each remote one's exact outgoing body against the policy:
 * what may not leave is left out (and said why), what must be redacted is. Throws when nothing remains.
 */
async function planRoute(
  route: Route,
  request: GenerateRequest,
  policy: EgressPolicy,
  decision: Decision,
): Promise<Plan> {
  const start: Plan["start"] = new Map();
  const tiers: TargetState[][] = [];
  const reasons = new Set<string>();
  for (const tier of route.tiers) {
    const kept: TargetState[] = [];
    for (const target of tier) {
      // The router passes each target its own model name; a remote provider builds its whole body from it.
      const prepared = target.provider.prepareGenerate({ ...request, model: target.model });
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
 * The target to try next in a tier: breaker closed (or its probe due), healthy first, then the fewest requests in
 * flight per unit of weight; ties go by smooth weighted round-robin so equal load still splits by weight.
 */
function pickTarget(remaining: TargetState[], decision: Decision): TargetState | undefined {
  const open = remaining.filter((target) => target.breaker.state === "open" && target.breaker.retryInMs() > 0);
  for (const target of open) {
    decision.attempts.push({
      provider: target.provider.name,
      model: target.model,
      remote: target.remote,
      outcome: "circuit open",
      ms: 0,
    });
    remaining.splice(remaining.indexOf(target), 1);
  }
  if (remaining.length === 0) return undefined;
  const healthy = remaining.filter((target) => target.healthy);
  const pool = healthy.length > 0 ? healthy : remaining;
  const load = (target: TargetState) => target.outstanding / target.weight;
  const least = Math.min(...pool.map(load));
  const tied = pool.filter((target) => load(target) === least);
  let chosen = tied[0]!;
  if (tied.length > 1) {
    const total = tied.reduce((sum, target) => sum + target.weight, 0);
    for (const target of tied) target.credit += target.weight;
    chosen = tied.reduce((best, target) => (target.credit > best.credit ? target : best));
    chosen.credit -= total;
  }
  if (!chosen.breaker.tryAcquire()) {
    remaining.splice(remaining.indexOf(chosen), 1);
    decision.attempts.push({
      provider: chosen.provider.name,
      model: chosen.model,
      remote: chosen.remote,
      outcome: "circuit open",
      ms: 0,
    });
    return pickTarget(remaining, decision);
  }
  return chosen;
}

class TargetTimeout extends Error {}

type Started =
  | { ok: true; first: ChatEvent[]; iterator: AsyncIterator<ChatEvent> }
  | { ok: false; error: unknown; timedOut: boolean };

/**
 * Starts a target and waits for its first content (a token, a tool call, or the end of an empty answer) within the
 * target's timeout. Until then a failure can still fall back; after it, the stream belongs to the client.
 */
async function startTarget(
  target: TargetState,
  start: (signal: AbortSignal) => AsyncIterable<ChatEvent>,
  signal?: AbortSignal,
): Promise<Started> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new TargetTimeout(`no answer from ${target.label} within ${target.timeoutMs / 1000}s`));
  }, target.timeoutMs);
  target.outstanding++;
  const first: ChatEvent[] = [];
  let iterator: AsyncIterator<ChatEvent> | undefined;
  try {
    iterator = start(controller.signal)[Symbol.asyncIterator]();
    const timeout = new Promise<never>((_, reject) =>
      controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true }),
    );
    timeout.catch(() => {});
    for (;;) {
      const next = await Promise.race([iterator.next(), timeout]);
      if (next.done) break;
      const event = next.value;
      if (event.type === "error") throw errorFromEvent(event.error, UpstreamError);
      first.push(event);
      if (event.type === "text-delta" || event.type === "tool-call" || event.type === "finish") break;
    }
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    // The signal stays linked: a client that goes away still cancels the upstream request.
    signal?.addEventListener("abort", onAbort, { once: true });
    return { ok: true, first, iterator };
  } catch (error) {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    target.outstanding--;
    // A client that hung up says nothing about the target: only its own failures may open the breaker.
    if (signal?.aborted && !timedOut) target.breaker.abandon();
    else target.breaker.failure();
    if (!controller.signal.aborted) controller.abort();
    void iterator?.return?.().catch(() => {});
    const reason = timedOut
      ? new UpstreamError(
          `provider ${target.provider.name}: no first token from ${target.model} within ${target.timeoutMs / 1000}s`,
          {
            status: 504,
            code: "upstream_timeout",
            retryable: true,
          },
        )
      : error;
    return { ok: false, error: reason, timedOut };
  }
}

/** Replays the first events, then streams the rest; settles load and breaker when the stream ends. */
async function* finishTarget(
  target: TargetState,
  first: ChatEvent[],
  iterator: AsyncIterator<ChatEvent>,
  signal: AbortSignal | undefined,
): AsyncGenerator<ChatEvent> {
  let failed = false;
  try {
    for (const event of first) yield event;
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      if (next.value.type === "error") failed = true;
      yield next.value;
    }
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    target.outstanding--;
    // The stream the client cut short (its error is the cut itself) counts neither way.
    if (signal?.aborted) target.breaker.abandon();
    else if (failed) target.breaker.failure();
    else target.breaker.success();
    await iterator.return?.().catch(() => {});
  }
}

/** The caller's own mistake (bad field, prompt too long): no other target will do better. */
function isClientError(error: unknown): boolean {
  return isFreeholdError(error) && !(error instanceof UpstreamError) && [400, 413, 422].includes(error.status);
}

/** Milliseconds before retrying the same target, or null to fall back now (not retryable, or Retry-After too long). */
function retryWait(route: Route, attempt: number, error: unknown): number | null {
  if (!isFreeholdError(error) || !error.retryable) return null;
  const after = error instanceof UpstreamError ? error.retryAfterSeconds : undefined;
  if (after !== undefined) return after * 1000 <= route.maxRetryWaitMs ? Math.round(after * 1000) : null;
  return Math.round(route.backoffMs * 2 ** attempt);
}

function finalError(route: Route, lastError: unknown): Error {
  if (lastError === undefined) {
    const retryIn = Math.min(...route.tiers.flat().map((target) => target.breaker.retryInMs()));
    return new UpstreamError(
      `every target of route ${route.name} is unavailable (circuit open after repeated failures); retry in ${Math.ceil(retryIn / 1000)}s`,
      {
        status: 503,
        code: "route_unavailable",
        retryable: true,
        retryAfterSeconds: Math.max(1, Math.ceil(retryIn / 1000)),
      },
    );
  }
  if (isFreeholdError(lastError)) return lastError;
  return lastError instanceof Error ? lastError : new Error(String(lastError));
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });
}
