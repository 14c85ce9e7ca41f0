import type { EmbeddingRequest, EmbeddingResult, GenerateRequest, ModelInfo, RoutedEvent } from "../core/chat.js";
import type { AuditSink, RequestContext } from "../core/context.js";
import { InvalidRequestError, isFreeholdError } from "../core/errors.js";
import type { ProfileSource } from "../core/profile.js";
import {
  errorText,
  finalError,
  finishTarget,
  isClientError,
  pickTarget,
  retryWait,
  sleep,
  startTarget,
} from "./attempts.js";
import { type Decision, DecisionLog } from "./decisions.js";
import { EgressPolicy, type Verdict } from "./egressPolicy.js";
import { HealthMonitor } from "./health.js";
import { estimateTokens, forTarget, imageCount, type Plan, planRoute, runLocal } from "./plan.js";
import type { Route, RoutingTable } from "./table.js";

/**
 * A request whose route is decided and whose remote targets' outgoing bodies are checked: what `serve` runs. Only
 * the router that made it can serve it (it holds that router's table and decision).
 */
export interface RoutedPlan {
  readonly request: GenerateRequest;
  readonly table: RoutingTable;
  readonly decision: Decision;
  /** Absent: no route has the name, the local engine answers it. */
  readonly route?: { route: Route; policy: EgressPolicy; plan: Plan };
}

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
  /** The profiles of the engine's models: a route's local target gets its own (plan.ts forTarget). */
  private readonly profiles: ProfileSource;

  constructor(
    table: RoutingTable,
    options: { audit?: AuditSink; decisionCapacity?: number; profiles?: ProfileSource } = {},
  ) {
    this.table = table;
    this.profiles = options.profiles ?? { profile: async () => undefined };
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

  /** Plans and serves (the gateway runs the two as separate stages, with metering between its callers). */
  async *generate(
    request: GenerateRequest,
    context: RequestContext,
    signal?: AbortSignal,
  ): AsyncGenerator<RoutedEvent> {
    yield* this.serve(await this.plan(request, context), signal);
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
      return runLocal(local.provider.prepareCountTokens(await forTarget(request, local, this.profiles))).catch(
        () => estimate,
      );
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

  /**
   * The policy stage (the gateway's `classified`): decides the route and prepares every target; each remote one's
   * exact outgoing body is classified and the key's or route's policy applied to it (plan.ts, egressPolicy.ts). A
   * request nothing may answer is refused here, before anything is sent.
   */
  async plan(request: GenerateRequest, context: RequestContext): Promise<RoutedPlan> {
    const table = this.table;
    const route = table.routes.get(request.model);
    const decision = this.newDecision(context, request.model, route);
    if (!route) return { request, table, decision };
    const policy = new EgressPolicy(table, route, context, decision);
    try {
      return {
        request,
        table,
        decision,
        route: { route, policy, plan: await planRoute(route, request, policy, decision, this.profiles) },
      };
    } catch (error) {
      decision.outcome = "refused";
      decision.explanation.push(error instanceof Error ? error.message : String(error));
      this.decisions.record(decision);
      throw error;
    }
  }

  /**
   * The route-and-fall-back stage: tries the planned targets tier by tier and streams the first that answers,
   * preceded by a `served-by` event naming it (the gateway settles against it).
   */
  async *serve(planned: RoutedPlan, signal?: AbortSignal): AsyncGenerator<RoutedEvent> {
    const { request, table, decision } = planned;
    if (!planned.route) {
      decision.servedBy = { provider: "local", model: request.model, remote: false };
      decision.outcome = "served";
      decision.explanation.push(
        `no route is named ${request.model}: the local engine serves it, nothing leaves the machine`,
      );
      this.decisions.record(decision);
      yield { type: "served-by", target: decision.servedBy };
      yield* runLocal(table.local.prepareGenerate(request), signal);
      return;
    }
    const { route, policy, plan } = planned.route;
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
            decision.outcome = "served";
            decision.explanation.push(
              `served by ${target.label} (${target.remote ? `remote: ${target.provider.origin}` : "local"})${policy.redaction && target.remote ? ", with findings replaced by placeholders" : ""}`,
            );
            this.decisions.record(decision);
            // The ledger row and its cost follow where the answer really came from (the gateway's settle stage).
            yield { type: "served-by", target: decision.servedBy };
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
            if (target.remote)
              yield {
                type: "served-by",
                target: { provider: target.provider.name, model: target.model, remote: true },
              };
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
