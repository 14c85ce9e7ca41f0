import { randomUUID } from "node:crypto";
import type { GenerateRequest } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import { FreeholdError, PermissionError } from "../core/errors.js";
import type { EvalModels, ServedBy } from "../eval/ports.js";
import type { RouteTarget } from "../eval/promote.js";
import type { Freehold } from "../library.js";
import { runAsBuilt } from "../providers/provider.js";

type Resolved =
  | { kind: "local"; model: string }
  | { kind: "route"; route: string }
  | { kind: "provider"; provider: string; model: string };

/**
 * How `freehold eval` names models: `provider/model` for a provider in freehold.yaml (`local/NAME` is the engine),
 * a route name from freehold.yaml, or a local model. Local models go straight to the engine (no ledger rows, no
 * routing audit entries for evaluation traffic); routes go through the router with their privacy rules; providers
 * are called directly, unless freehold runs offline.
 */
export function resolveEvalModel(freehold: Freehold, spec: string): Resolved {
  const table = freehold.router.current;
  const slash = spec.indexOf("/");
  if (slash > 0) {
    const provider = spec.slice(0, slash);
    const model = spec.slice(slash + 1);
    if (provider === "local") return { kind: "local", model };
    if (table.providers.has(provider)) return { kind: "provider", provider, model };
  }
  if (table.routes.has(spec)) return { kind: "route", route: spec };
  return { kind: "local", model: spec };
}

/** The route target a model name stands for (null for a route: a route cannot be a route's target). */
export function routeTargetOf(freehold: Freehold, spec: string): RouteTarget | null {
  const resolved = resolveEvalModel(freehold, spec);
  if (resolved.kind === "route") return null;
  return resolved.kind === "local"
    ? { provider: "local", model: resolved.model }
    : { provider: resolved.provider, model: resolved.model };
}

export function evalModels(freehold: Freehold): EvalModels {
  const provider = (name: string) => {
    const table = freehold.router.current;
    const found = table.providers.get(name)!;
    if (table.offline && found.origin !== null)
      throw new PermissionError(
        `freehold runs offline, so the provider ${name} (${found.origin}) cannot be evaluated; run without --offline`,
        "egress_forbidden",
      );
    return found;
  };
  return {
    generate(spec: string, request: GenerateRequest, signal?: AbortSignal) {
      const resolved = resolveEvalModel(freehold, spec);
      switch (resolved.kind) {
        case "local": {
          const servedBy: ServedBy = { provider: "local", model: resolved.model, remote: false };
          return {
            events: freehold.engine.generate({ ...request, model: resolved.model }, signal),
            servedBy: () => servedBy,
          };
        }
        case "provider": {
          const target = provider(resolved.provider);
          const servedBy: ServedBy = {
            provider: resolved.provider,
            model: resolved.model,
            remote: target.origin !== null,
          };
          // The owner asked for this provider by name (`provider/model`): the owner's own data, sent as built.
          return {
            events: runAsBuilt(target.prepareGenerate({ ...request, model: resolved.model }), signal),
            servedBy: () => servedBy,
          };
        }
        case "route": {
          const requestId = `eval_${randomUUID().replaceAll("-", "")}`;
          const context: RequestContext = { requestId, api: "library", route: "eval" };
          return {
            events: freehold.router.generate({ ...request, model: resolved.route }, context, signal),
            // The router names the target that answered on the context.
            servedBy: () => context.servedBy ?? { provider: "local", model: spec, remote: false },
          };
        }
        default:
          return resolved satisfies never;
      }
    },
    embed(spec, input, signal) {
      const resolved = resolveEvalModel(freehold, spec);
      if (resolved.kind === "provider")
        return runAsBuilt(provider(resolved.provider).prepareEmbed({ model: resolved.model, input }), signal);
      if (resolved.kind === "route")
        return freehold.router.embed(
          { model: resolved.route, input },
          { requestId: `eval_${randomUUID()}`, api: "library", route: "eval" },
          signal,
        );
      return freehold.engine.embed({ model: resolved.model, input }, signal);
    },
    async check(spec) {
      const resolved = resolveEvalModel(freehold, spec);
      if (resolved.kind === "provider") provider(resolved.provider);
      if (resolved.kind !== "local") return;
      await freehold.store.show(resolved.model).catch(() => {
        const providers = [...freehold.router.current.providers.keys()].filter((name) => name !== "local");
        throw new FreeholdError(
          `no model, route or provider is named ${JSON.stringify(spec)}: see \`freehold list\` for local models${providers.length ? `; providers in freehold.yaml: ${providers.join(", ")} (use provider/model)` : "; remote models are provider/model with a provider from freehold.yaml"}`,
          { code: "model_not_found", status: 404, type: "not_found_error" },
        );
      });
    },
  };
}
