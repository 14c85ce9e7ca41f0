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

/**
 * Wraps one generation in its admission and settlement: the worst case is reserved when the stream is first
 * pulled, and the reservation settled (and the ledger row committed) before the `finish` or `error` event is passed
 * on, so a client that saw the end of its answer is in the ledger. A consumer that stops early settles as cancelled.
 */
export async function* meteredGeneration(
  meter: RequestMeter,
  request: GenerateRequest,
  context: RequestContext,
  target: MeterTarget,
  run: (request: GenerateRequest) => AsyncIterable<ChatEvent>,
  candidates?: MeterTarget[],
): AsyncGenerator<ChatEvent> {
  authorizeModel(context, request.model);
  const keepContent = context.key?.storeContent === true;
  const admission: Admission = await meter.admit(
    {
      kind: "generate",
      promptTokenBound: promptTokenBound(request),
      maxTokens: request.limits.maxTokens,
      ...(keepContent ? { content: request } : {}),
      ...(candidates ? { candidates } : {}),
    },
    context,
    target,
  );
  const limited =
    admission.maxTokens === request.limits.maxTokens
      ? request
      : { ...request, limits: { ...request.limits, maxTokens: admission.maxTokens } };
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
  const settle = (status: number, errorCode?: string) =>
    admission.settle({
      ...outcome,
      status,
      ...(errorCode ? { errorCode } : { errorCode: undefined }),
      ...(keepContent ? { responseText: text } : {}),
      ...(context.servedBy ? { servedBy: context.servedBy } : {}),
    });
  try {
    for await (const event of run(limited)) {
      switch (event.type) {
        case "text-delta":
        case "tool-call":
          outcome.timeToFirstTokenMs ??= performance.now() - started;
          if (keepContent) text += event.type === "text-delta" ? event.text : JSON.stringify(event.call);
          break;
        case "usage":
          outcome.promptTokens = event.usage.promptTokens;
          outcome.completionTokens = event.usage.completionTokens;
          outcome.cachedTokens = event.usage.cachedTokens ?? 0;
          if (event.timing) outcome.timeToFirstTokenMs = event.timing.timeToFirstTokenMs;
          break;
        case "finish":
          await settle(event.reason === "cancelled" ? 499 : event.reason === "error" ? 500 : 200);
          break;
        case "error":
          await settle(event.error.status, event.error.code);
          break;
      }
      yield event;
    }
    await settle(200);
  } catch (error) {
    await settle(failure(error).status, failure(error).errorCode);
    throw error;
  } finally {
    // A consumer that stopped early: settled as cancelled. Never throws from here (it would hide the first error).
    await settle(499, "cancelled").catch(() => {});
  }
}

/** Embeddings: the same admission and settlement around one call. */
export async function meteredEmbedding<T extends { promptTokens: number }>(
  meter: RequestMeter,
  request: EmbeddingRequest,
  context: RequestContext,
  target: MeterTarget,
  run: () => Promise<T>,
): Promise<T> {
  authorizeModel(context, request.model);
  const bound = request.input.reduce((total, text) => total + bytes(text) + 2, 0);
  const admission = await meter.admit({ kind: "embed", promptTokenBound: bound, maxTokens: 0 }, context, target);
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
