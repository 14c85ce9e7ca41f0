import type { RequestContext } from "../core/context.js";
import { PermissionError } from "../core/errors.js";
import type { Generation } from "./ports.js";

/**
 * The pipeline's first stage. Who may call a route at all is decided before any route code runs (src/http/guard.ts);
 * what stays here is the key's model scope: a key limited to some models may use only those (names compare
 * case-insensitively, ":latest" implied).
 */
export function authorizeModel(context: RequestContext, model: string): void {
  const allowed = context.key?.models;
  if (!allowed) return;
  const normal = (name: string) => {
    const lower = name.toLowerCase();
    return lower.includes(":") ? lower : `${lower}:latest`;
  };
  if (!allowed.some((name) => normal(name) === normal(model)))
    throw new PermissionError(
      `The key ${context.key!.name} may not use the model '${model}'; it may use: ${allowed.join(", ")}`,
      "model_not_allowed",
    );
}

export function modelAllowed(context: RequestContext | undefined, model: string): boolean {
  try {
    if (context) authorizeModel(context, model);
    return true;
  } catch {
    return false;
  }
}

/** Refuses a model outside the key's scope before anything else (profile lookup, reservation) happens. */
export function authorized<E>(inner: Generation<E>): Generation<E> {
  return async function* authorizedGeneration(request, context, signal) {
    authorizeModel(context, request.model);
    yield* inner(request, context, signal);
  };
}
