import type { ChatEvent } from "../core/chat.js";
import { errorFromEvent, isFreeholdError } from "../core/errors.js";
import { UpstreamError } from "../providers/upstream.js";
import type { Decision } from "./decisions.js";
import type { Route, TargetState } from "./table.js";

/**
 * The target to try next in a tier: breaker closed (or its probe due), healthy first, then the fewest requests in
 * flight per unit of weight; ties go by smooth weighted round-robin so equal load still splits by weight.
 */
export function pickTarget(remaining: TargetState[], decision: Decision): TargetState | undefined {
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

export type Started =
  | { ok: true; first: ChatEvent[]; iterator: AsyncIterator<ChatEvent> }
  | { ok: false; error: unknown; timedOut: boolean };

/**
 * Starts a target and waits for its first content (a token, a tool call, or the end of an empty answer) within the
 * target's timeout. Until then a failure can still fall back; after it, the stream belongs to the client.
 */
export async function startTarget(
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
export async function* finishTarget(
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
export function isClientError(error: unknown): boolean {
  return isFreeholdError(error) && !(error instanceof UpstreamError) && [400, 413, 422].includes(error.status);
}

/** Milliseconds before retrying the same target, or null to fall back now (not retryable, or Retry-After too long). */
export function retryWait(route: Route, attempt: number, error: unknown): number | null {
  if (!isFreeholdError(error) || !error.retryable) return null;
  const after = error instanceof UpstreamError ? error.retryAfterSeconds : undefined;
  if (after !== undefined) return after * 1000 <= route.maxRetryWaitMs ? Math.round(after * 1000) : null;
  return Math.round(route.backoffMs * 2 ** attempt);
}

export function finalError(route: Route, lastError: unknown): Error {
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

export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
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
