import type { ChatEvent, EmbeddingRequest, GenerateRequest } from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import { isFreeholdError, PermissionError } from "../core/errors.js";
import type { Admission, MeterOutcome, MeterTarget, RequestMeter } from "../core/metering.js";

/** Per-message template overhead (role markers, separators) added to the byte count, in tokens. */
const messageOverhead = 8;

function bytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/**
 * An upper bound on a request's prompt tokens without tokenizing: a token is at least one byte for the tokenizers
 * GGUF models use (byte-level BPE, SentencePiece with byte fallback), plus template overhead per message.
 */
export function promptTokenBound(request: GenerateRequest): number {
  if (request.kind === "completion")
    return typeof request.prompt === "string" ? bytes(request.prompt) + 2 : request.prompt.length + 2;
  let total = 16;
  for (const message of request.messages) {
    total += bytes(message.content) + messageOverhead + (message.name ? bytes(message.name) : 0);
    for (const call of message.toolCalls ?? []) total += bytes(call.name) + bytes(call.arguments) + 16;
  }
  for (const tool of request.tools ?? []) total += bytes(JSON.stringify(tool)) + 16;
  if (request.responseFormat?.type === "json-schema") total += bytes(JSON.stringify(request.responseFormat.schema));
  return total;
}

/**
 * Hidden tokens a paid provider adds that the request's bytes do not show: its own system prompt for tool use
 * (Anthropic documents a few hundred tokens) and per-request framing. A margin, not a measured figure.
 */
export const REMOTE_TOOL_OVERHEAD = 1024;
export const REMOTE_REQUEST_OVERHEAD = 64;

/**
 * An upper bound on a remote model's prompt tokens: paid providers' tokenizers are byte-level BPE (tiktoken,
 * Anthropic's), where a token is at least one byte, so the prompt's bytes (promptTokenBound) bound its text; the
 * hidden overhead above is added on top.
 */
export function remotePromptBound(request: GenerateRequest): number {
  const tools = request.kind === "chat" && (request.tools?.length ?? 0) > 0;
  return promptTokenBound(request) + REMOTE_REQUEST_OVERHEAD + (tools ? REMOTE_TOOL_OVERHEAD : 0);
}

/** The engine on this machine, until a router says otherwise (context.servedBy). */
export function localTarget(model: string): MeterTarget {
  return { provider: "local", model, remote: false };
}

/** Model scopes: a key limited to some models may use only those (names compare case-insensitively, ":latest" implied). */
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

export interface GenerationOptions {
  /** Every target that might answer (a route's fallbacks included), for the worst-case reservation. */
  candidates?: MeterTarget[] | undefined;
  /** The client's signal: aborted when it goes away. */
  signal?: AbortSignal | undefined;
  /**
   * A true upper bound on the prompt's tokens when the caller can compute one (tokenized by the local model, bytes
   * for remote ones); without it, the byte bound of `promptTokenBound`.
   */
  promptBound?: (request: GenerateRequest) => Promise<number>;
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
export async function* meteredGeneration(
  meter: RequestMeter,
  request: GenerateRequest,
  context: RequestContext,
  target: MeterTarget,
  run: (request: GenerateRequest, signal: AbortSignal) => AsyncIterable<ChatEvent>,
  options: GenerationOptions = {},
): AsyncGenerator<ChatEvent> {
  authorizeModel(context, request.model);
  const keepContent = context.key?.storeContent === true;
  const bound = options.promptBound ? await options.promptBound(request) : promptTokenBound(request);
  const admission: Admission = await meter.admit(
    {
      kind: "generate",
      promptTokenBound: bound,
      maxTokens: request.limits.maxTokens,
      ...(keepContent ? { content: request } : {}),
      ...(options.candidates ? { candidates: options.candidates } : {}),
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
  const observe = (event: ChatEvent) => {
    switch (event.type) {
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
    } else if (!usageSeen && status === 499 && context.servedBy?.remote) {
      // Sent to a paid provider, then the client left before the first token: the provider may bill the prompt.
      outcome.promptTokens = bound;
    }
    settling = admission.settle({
      ...outcome,
      status,
      ...(errorCode ? { errorCode } : { errorCode: undefined }),
      ...(keepContent ? { responseText: text } : {}),
      ...(context.servedBy ? { servedBy: context.servedBy } : {}),
    });
    return settling;
  };
  const clientGone = () => clientSignal?.aborted === true;
  const iterator = run(limited, controller.signal)[Symbol.asyncIterator]();
  try {
    for (;;) {
      const next = await iterator.next();
      if (next.done) break;
      const event = next.value;
      observe(event);
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
async function drain(iterator: AsyncIterator<ChatEvent>, observe: (event: ChatEvent) => void): Promise<void> {
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
  authorizeModel(context, request.model);
  const bound = request.input.reduce((total, text) => total + bytes(text) + 2, 0);
  const admission = await meter.admit({ kind, promptTokenBound: bound, maxTokens: 0 }, context, target);
  const base = { completionTokens: 0, cachedTokens: 0, timeToFirstTokenMs: null };
  try {
    const result = await run();
    await admission.settle({
      ...base,
      promptTokens: result.promptTokens,
      status: 200,
      ...(context.servedBy ? { servedBy: context.servedBy } : {}),
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
  request: GenerateRequest,
  context: RequestContext,
  target: MeterTarget,
  run: () => Promise<number>,
): Promise<number> {
  authorizeModel(context, request.model);
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
