import type { ChatEvent, EmbeddingRequest, GenerateRequest, RoutedEvent } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import { isFreeholdError } from "../core/errors.js";
import type { Admission, MeterOutcome, MeterTarget, RequestMeter } from "../core/metering.js";
import { bytes } from "./bounds.js";
import { type Generation, localTarget } from "./ports.js";

function failure(error: unknown): Pick<MeterOutcome, "status" | "errorCode"> {
  return isFreeholdError(error)
    ? { status: error.status, errorCode: error.code }
    : { status: 500, errorCode: "internal_error" };
}

/** How long a generation the client left may take to stop and report its usage before it is estimated instead. */
export const DRAIN_TIMEOUT_MS = 10_000;

/** The client went away (or the consumer stopped reading): the generation is stopped and charged for what it used. */
export class ClientGoneError extends Error {
  constructor() {
    super("the client went away");
    this.name = "ClientGoneError";
  }
}

export interface MeteringOptions {
  /** Every target that might answer a model name (a route's fallbacks included), for the worst-case reservation. */
  candidates: (model: string) => MeterTarget[];
  /**
   * A true upper bound on the prompt's tokens for this caller: tokenized by the local models when the key's limits
   * count tokens (tokenizing costs a round trip), else the byte bound of `promptTokenBound`.
   */
  promptBound: (request: GenerateRequest, context: RequestContext, candidates: MeterTarget[]) => Promise<number>;
}

/**
 * The pipeline's bound-and-reserve stage and, when the stream ends, its settle stage: one wrapper, because the
 * reservation it makes is the one it must settle. It reads the `served-by` event the router sends (the ledger's
 * provider and cost follow it) and passes only the model's events on.
 */
export function metered(meter: RequestMeter, options: MeteringOptions, inner: Generation<RoutedEvent>): Generation {
  return (request, context, signal) => {
    const candidates = options.candidates(request.model);
    return meteredGeneration(meter, request, context, localTarget(request.model), inner, {
      candidates,
      signal,
      promptBound: () => options.promptBound(request, context, candidates),
    });
  };
}

interface GenerationOptions {
  candidates: MeterTarget[];
  /** The client's signal: aborted when it goes away. */
  signal?: AbortSignal | undefined;
  promptBound: () => Promise<number>;
}

/** Bytes of what reached the client: text and tool calls. A token is at least one byte, so this bounds its tokens. */
function contentBytes(event: ChatEvent): number {
  if (event.type === "text-delta") return bytes(event.text);
  if (event.type === "tool-call") return bytes(event.call.name) + bytes(event.call.arguments);
  return 0;
}

/**
 * Wraps one generation in its admission and settlement: the worst case is reserved when the stream is first
 * pulled, and the reservation settled (and the ledger row committed) before the `finish` or `error` event is passed
 * on, so a client that saw the end of its answer is in the ledger.
 *
 * What was consumed is charged. A consumer that stops early (the client hung up) stops the generation through its
 * own signal, then this keeps reading the generation's last events for up to DRAIN_TIMEOUT_MS: the local engine
 * reports the tokens it really evaluated and generated even when cancelled. A remote stream's usage arrives only at
 * its end, so one cut short is charged an upper bound instead: the reserved prompt bound, plus the bytes of the text
 * and tool calls received (at least one byte per token), at most the max_tokens reserved; one the client left
 * before its first token, the prompt bound. The row says 499.
 */
async function* meteredGeneration(
  meter: RequestMeter,
  request: GenerateRequest,
  context: RequestContext,
  target: MeterTarget,
  run: Generation<RoutedEvent>,
  options: GenerationOptions,
): AsyncGenerator<ChatEvent> {
  const keepContent = context.key?.storeContent === true;
  const bound = await options.promptBound();
  const admission: Admission = await meter.admit(
    {
      kind: "generate",
      promptTokenBound: bound,
      maxTokens: request.limits.maxTokens,
      ...(keepContent ? { content: request } : {}),
      candidates: options.candidates,
    },
    context,
    target,
  );
  const limited =
    admission.maxTokens === request.limits.maxTokens
      ? request
      : { ...request, limits: { ...request.limits, maxTokens: admission.maxTokens } };
  // The generation's own signal: the client's, or this wrapper's when its consumer stops reading.
  const controller = new AbortController();
  const clientSignal = options.signal;
  const onClientAbort = () => controller.abort(clientSignal?.reason ?? new ClientGoneError());
  if (clientSignal?.aborted) onClientAbort();
  else clientSignal?.addEventListener("abort", onClientAbort, { once: true });
  const started = performance.now();
  const outcome: MeterOutcome = {
    promptTokens: 0,
    completionTokens: 0,
    cachedTokens: 0,
    timeToFirstTokenMs: null,
    status: 499,
    errorCode: "cancelled",
  };
  let text = "";
  let usageSeen = false;
  let received = 0;
  let contentSeen = false;
  let settled = false;
  /** Where the answer really came from (the router's `served-by`); the admission target until it says. */
  let servedBy: MeterTarget | undefined;
  const observe = (event: RoutedEvent) => {
    switch (event.type) {
      case "served-by":
        servedBy = event.target;
        break;
      case "text-delta":
      case "tool-call":
        outcome.timeToFirstTokenMs ??= performance.now() - started;
        contentSeen = true;
        received += contentBytes(event);
        if (keepContent) text += event.type === "text-delta" ? event.text : JSON.stringify(event.call);
        break;
      case "usage":
        usageSeen = true;
        outcome.promptTokens = event.usage.promptTokens;
        outcome.completionTokens = event.usage.completionTokens;
        outcome.cachedTokens = event.usage.cachedTokens ?? 0;
        if (event.timing) outcome.timeToFirstTokenMs = event.timing.timeToFirstTokenMs;
        if (event.timing?.draftTokens) outcome.draftTokens = event.timing.draftTokens;
        break;
    }
  };
  let settling: Promise<void> = Promise.resolve();
  /** Settles once; resolves when the ledger row is committed (later calls get the first call's promise). */
  const settle = (status: number, errorCode?: string): Promise<void> => {
    if (settled) return settling;
    settled = true;
    clientSignal?.removeEventListener("abort", onClientAbort);
    // No usage came (a remote stream cut short, or a local one that did not stop in time): charge an upper bound of
    // what was consumed. Nothing received and nothing reported = nothing started (refused, unreachable, queued).
    if (!usageSeen && contentSeen) {
      outcome.promptTokens = bound;
      const allowed = admission.maxTokens ?? Number.POSITIVE_INFINITY;
      outcome.completionTokens = Math.min(allowed, Math.max(1, received));
    } else if (!usageSeen && status === 499 && servedBy?.remote) {
      // Sent to a paid provider, then the client left before the first token: the provider may bill the prompt.
      outcome.promptTokens = bound;
    }
    settling = admission.settle({
      ...outcome,
      status,
      ...(errorCode ? { errorCode } : { errorCode: undefined }),
      ...(keepContent ? { responseText: text } : {}),
      ...(servedBy ? { servedBy } : {}),
    });
    return settling;
  };
  const clientGone = () => clientSignal?.aborted === true;
  const iterator = run(limited, context, controller.signal)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      const event = next.value;
      observe(event);
      if (event.type === "served-by") continue;
      if (event.type === "finish")
        await settle(
          event.reason === "cancelled" || clientGone() ? 499 : event.reason === "error" ? 500 : 200,
          event.reason === "cancelled" || clientGone() ? "cancelled" : undefined,
        );
      else if (event.type === "error")
        await (clientGone() ? settle(499, "cancelled") : settle(event.error.status, event.error.code));
      yield event;
    }
    await settle(200);
  } catch (error) {
    // A settlement that fails (the control plane's database gone) must not hide the first error.
    if (clientGone() || error instanceof ClientGoneError) await settle(499, "cancelled").catch(() => {});
    else await settle(failure(error).status, failure(error).errorCode).catch(() => {});
    throw error;
  } finally {
    if (!settled) {
      // The consumer stopped reading: stop the generation and read what it reports as it stops.
      if (!controller.signal.aborted) controller.abort(new ClientGoneError());
      await drain(iterator, observe);
      await settle(499, "cancelled").catch(() => {});
    } else {
      // Settled, but the consumer may have stopped early (an error event it throws on, a last event it skips):
      // close the generation as for-await would, so its own cleanup runs (a slot released, a breaker updated).
      await Promise.resolve(iterator.return?.()).catch(() => {});
    }
  }
}

/** Reads a stopping generation's last events (its usage) for up to DRAIN_TIMEOUT_MS, then lets it go. */
async function drain(iterator: AsyncIterator<RoutedEvent>, observe: (event: RoutedEvent) => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"timeout">((resolve) => {
    timer = setTimeout(() => resolve("timeout"), DRAIN_TIMEOUT_MS);
    timer.unref();
  });
  try {
    for (;;) {
      const next = await Promise.race([iterator.next(), timeout]);
      if (next === "timeout" || next.done) break;
      observe(next.value);
      if (next.value.type === "finish" || next.value.type === "error") break;
    }
  } catch {
    // A generation that fails as it stops has reported what it will.
  } finally {
    clearTimeout(timer);
    void Promise.resolve(iterator.return?.()).catch(() => {});
  }
}

/** Embeddings (and reranking, `kind: "rerank"`, its texts as `input`): the same admission and settlement around one call. */
export async function meteredEmbedding<T extends { promptTokens: number }>(
  meter: RequestMeter,
  request: EmbeddingRequest,
  context: RequestContext,
  target: MeterTarget,
  run: () => Promise<T>,
  kind: "embed" | "rerank" = "embed",
): Promise<T> {
  const bound = request.input.reduce((total, text) => total + bytes(text) + 2, 0);
  const admission = await meter.admit({ kind, promptTokenBound: bound, maxTokens: 0 }, context, target);
  const base = { completionTokens: 0, cachedTokens: 0, timeToFirstTokenMs: null };
  try {
    const result = await run();
    await admission.settle({
      ...base,
      promptTokens: result.promptTokens,
      status: 200,
    });
    return result;
  } catch (error) {
    await admission.settle({ ...base, promptTokens: 0, ...failure(error) }).catch(() => {});
    throw error;
  }
}

/**
 * Token counting (Anthropic's count_tokens): admitted like any model request, so it counts against the key's
 * request rate and concurrency, and recorded in the ledger. It generates nothing and is free where a provider
 * answers it (Anthropic's counting endpoint costs nothing), so the row carries 0 tokens and 0 cost and the key's
 * token totals do not grow.
 */
export async function meteredCount(
  meter: RequestMeter,
  context: RequestContext,
  target: MeterTarget,
  run: () => Promise<number>,
): Promise<number> {
  const admission = await meter.admit({ kind: "count-tokens", promptTokenBound: 0, maxTokens: 0 }, context, target);
  const base = { promptTokens: 0, completionTokens: 0, cachedTokens: 0, timeToFirstTokenMs: null };
  try {
    const count = await run();
    await admission.settle({ ...base, status: 200 });
    return count;
  } catch (error) {
    await admission.settle({ ...base, ...failure(error) }).catch(() => {});
    throw error;
  }
}
