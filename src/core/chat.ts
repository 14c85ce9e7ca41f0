/**
 * The internal model of a request and its response stream. Every wire format (OpenAI, Ollama, Anthropic) is a
 * codec to and from these types; every backend (the local engine, a remote provider) is a ModelPort that streams
 * ChatEvents. A non-streaming answer is a fold of the stream (see foldChatEvents).
 */

import { type ErrorFields, errorFromEvent } from "./errors.js";

export type Role = "system" | "user" | "assistant" | "tool";

/** A function call the model made (arguments as a JSON text, as OpenAI sends them). */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** A function the model may call; `parameters` is a JSON schema already normalised (core/jsonSchema.ts). */
export interface ToolDefinition {
  name: string;
  description?: string;
  parameters: Record<string, unknown>;
}

/** "required" and a named tool force a call (by grammar); "auto" lets the model choose; "none" hides the tools. */
export type ToolChoice = "auto" | "none" | "required" | { name: string };

/**
 * An image in a message, decoded at the HTTP edge (a data: URI, base64) and checked for type and size there. Images
 * of a message are shown to the model before its text (as Ollama's `images` are): every API's image parts land here.
 */
export interface ChatImage {
  /** image/png, image/jpeg, image/webp, image/gif, image/bmp. */
  mediaType: string;
  /** The bytes, base64 (no `data:` prefix). */
  data: string;
}

export interface ChatMessage {
  role: Role;
  content: string;
  /** Images for the model to look at (vision models only; see ChatImage). */
  images?: ChatImage[];
  /** For role "assistant": the calls it made. */
  toolCalls?: ToolCall[];
  /** For role "tool": the call this message answers. */
  toolCallId?: string;
  name?: string;
}

export interface SamplingOptions {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repeatPenalty?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  /** How many recent tokens the repeat/presence/frequency penalties look at. */
  repeatLastN?: number;
  seed?: number;
  /**
   * Token id (decimal, the model's own vocabulary) → bias added to that token's logit before sampling, -100..100
   * (OpenAI's logit_bias): -100 bans the token, 100 all but forces it.
   */
  logitBias?: Record<string, number>;
}

export interface GenerationLimits {
  /** Upper bound on generated tokens (0 generates nothing); undefined means "until the context is full". */
  maxTokens?: number;
  stop?: string[];
  /** Keep generating past end-of-generation tokens (benchmarks). */
  ignoreEos?: boolean;
}

/** Structured output, enforced by a grammar while generating. Schemas are already normalised (core/jsonSchema.ts). */
export type ResponseFormat =
  | { type: "text" }
  | { type: "json" }
  | { type: "json-schema"; schema: Record<string, unknown>; name?: string };

interface RequestBase {
  /** Model name as the client asked for it. */
  model: string;
  sampling: SamplingOptions;
  limits: GenerationLimits;
  responseFormat?: ResponseFormat;
  /** Free-form tags for the ledger and routing (never sent to the model). */
  metadata?: Record<string, string>;
  /** How long the model stays loaded after this request, in ms (Ollama's keep_alive): 0 unloads, negative keeps. */
  keepAliveMs?: number;
  /**
   * Report each generated token's log probability and this many most likely alternatives (0–20); undefined
   * reports none. The probabilities are the sampler's: the model's own at temperature 0, otherwise after
   * temperature, top_k, top_p and min_p have shaped them.
   */
  logprobs?: number;
  /**
   * How the model should be loaded (Ollama's num_ctx, num_thread, num_gpu). A value that differs from the loaded
   * model's reloads it once its running requests end; a value left out accepts whatever is loaded.
   */
  load?: LoadSettings;
  /**
   * The client takes the answer whole, not streamed: a remote provider may be asked for it in one piece (cheaper
   * to relay than a stream folded back together). The events are the same either way.
   */
  wholeAnswer?: boolean;
  /**
   * How much a reasoning model may think before it answers (its `<think>` block or its template's own markers).
   * Reasoning is always separated from the answer; without a budget it is bounded only by maxTokens.
   */
  reasoning?: ReasoningOptions;
  /**
   * What to do with a prompt longer than the model's context: "error" (the default: 400 context_length_exceeded),
   * "truncate-middle" (chat: drop the oldest turns, keeping system messages and the last turn), "shift" (keep the
   * prompt's end). An answer that dropped anything says so (a "truncated" event).
   */
  overflow?: OverflowPolicy;
}

export type OverflowPolicy = "error" | "truncate-middle" | "shift";

/** What was dropped from a prompt to fit the context. */
export interface Truncation {
  policy: Exclude<OverflowPolicy, "error">;
  /** Prompt tokens as sent. */
  promptTokens: number;
  /** The model's context window, in tokens. */
  contextSize: number;
  /** Prompt tokens the model saw. */
  keptTokens: number;
  droppedTokens: number;
  /** Whole messages dropped (truncate-middle). */
  droppedMessages: number;
}

export interface ReasoningOptions {
  /**
   * The level the client named (OpenAI's reasoning_effort, Ollama's think level), kept so a remote provider that
   * takes levels gets the one asked for. An empty ReasoningOptions means "reason, no budget" (Ollama think: true).
   */
  effort?: ReasoningEffort;
  /**
   * Tokens the model may spend reasoning; when spent, its closing marker is forced and it answers. 0 ends reasoning
   * as soon as it starts (a model cannot be kept from opening it, but it is closed at once).
   */
  budgetTokens?: number;
}

/**
 * Reasoning budgets for the named effort levels (OpenAI's reasoning_effort, Ollama's think levels), in tokens.
 * A documented choice (docs/reasoning.md): small local models reason in hundreds to a few thousand tokens.
 */
export const REASONING_EFFORT_BUDGETS = {
  none: 0,
  minimal: 256,
  low: 1024,
  medium: 4096,
  high: 16384,
} as const;

export type ReasoningEffort = keyof typeof REASONING_EFFORT_BUDGETS;

export interface LoadSettings {
  contextSize?: number;
  /** CPU threads; 0 picks automatically. */
  threads?: number;
  /** Layers offloaded to a GPU; "auto" as many as fit. */
  gpuLayers?: number | "auto";
}

export interface ChatRequest extends RequestBase {
  kind: "chat";
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  /** May the model call several tools in one answer (OpenAI's parallel_tool_calls; default true). */
  parallelToolCalls?: boolean;
}

export interface CompletionRequest extends RequestBase {
  kind: "completion";
  /** Text, or token ids used as they are (no BOS added). */
  prompt: string | number[];
}

export type GenerateRequest = ChatRequest | CompletionRequest;

export interface EmbeddingRequest {
  model: string;
  input: string[];
}

export interface EmbeddingResult {
  vectors: number[][];
  promptTokens: number;
}

/** Reranking (issue 14): how relevant each document is to the query, by a model with a ranking head. */
export interface RerankRequest {
  model: string;
  query: string;
  documents: string[];
}

export interface RerankResult {
  /** One per document, in the documents' order: a probability between 0 and 1. */
  scores: number[];
  /** Tokens evaluated (the query with each document). */
  promptTokens: number;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Prompt tokens served from cache instead of evaluated. */
  cachedTokens?: number;
}

export type FinishReason = "stop" | "length" | "tool-calls" | "error" | "cancelled";

export interface TimingInfo {
  /** Milliseconds from request start to the first generated token. */
  timeToFirstTokenMs: number;
  /** Milliseconds spent evaluating the prompt. */
  promptMs: number;
  /** Milliseconds spent generating. */
  generationMs: number;
  /** Speculative decoding (a profile's draft model): drafted tokens the model accepted and rejected. */
  draftTokens?: { accepted: number; rejected: number };
}

/** One alternative for a generated token. `bytes` is the token's UTF-8 (a token may be part of a character). */
export interface TokenAlternative {
  token: string;
  bytes: number[];
  /** Natural log of the probability; -9999 stands for "practically impossible" (as OpenAI reports it). */
  logprob: number;
}

export interface TokenLogprob extends TokenAlternative {
  /** The most likely tokens at this position, most likely first. */
  top: TokenAlternative[];
}

export type ChatEvent =
  /** `logprobs`, when asked for: one entry per token whose text this delta completes. */
  | { type: "text-delta"; text: string; logprobs?: TokenLogprob[] }
  /** The model's reasoning (thinking), never part of the answer; it comes before the answer's text. */
  | { type: "reasoning"; text: string; signature?: string }
  /** The prompt did not fit and was cut (the request's overflow policy); comes before any text. */
  | { type: "truncated"; truncation: Truncation }
  | { type: "tool-call"; call: ToolCall }
  | { type: "usage"; usage: Usage; timing?: TimingInfo }
  /** `stopSequence`: the caller's stop sequence that ended the answer (reason "stop"), if one did. */
  | { type: "finish"; reason: FinishReason; stopSequence?: string }
  /** A failure after the stream started; `errorFromEvent` (errors.ts) turns it back into the typed error. */
  | { type: "error"; error: ErrorFields };

/**
 * Which target answered, said by whatever picked it (the router) once the answer is committed to it: the ledger's
 * provider and cost follow it. Only between the router and the gateway's metering, which consumes it: the APIs
 * never see it, so it is not a ChatEvent.
 */
export interface ServedByEvent {
  type: "served-by";
  target: { provider: string; model: string; remote: boolean };
}

/** What a router streams: the model's events and, before them, the target that serves them. */
export type RoutedEvent = ChatEvent | ServedByEvent;

export interface ModelInfo {
  name: string;
  /** Unix seconds when it was added. */
  created: number;
  ownedBy: string;
  contextLength: number | null;
}

/** Anything that can answer: the local engine, a remote provider, another freehold. */
export interface ModelPort {
  generate(request: GenerateRequest, signal?: AbortSignal): AsyncIterable<ChatEvent>;
  embed(request: EmbeddingRequest, signal?: AbortSignal): Promise<EmbeddingResult>;
  listModels(): Promise<ModelInfo[]>;
  /** Prompt tokens the request would use, without generating (Anthropic's count_tokens). */
  countTokens(request: GenerateRequest): Promise<number>;
  /** Relevance of documents to a query; absent on ports that cannot rank (remote providers). */
  rerank?(request: RerankRequest, signal?: AbortSignal): Promise<RerankResult>;
}

export interface FoldedAnswer {
  text: string;
  /** The model's reasoning, when it reasoned. */
  reasoning?: string;
  /** An Anthropic upstream's signature over its thinking (a local model's reasoning has none). */
  reasoningSignature?: string;
  /** What was dropped from the prompt to fit the context, when anything was. */
  truncation?: Truncation;
  toolCalls: ToolCall[];
  finishReason: FinishReason;
  /** The caller's stop sequence that ended the answer, if one did. */
  stopSequence?: string;
  /** Per token, when the request asked for logprobs. */
  logprobs?: TokenLogprob[];
  usage: Usage;
  timing?: TimingInfo;
}

/** Folds a stream into one answer; an error event becomes a thrown error (by default the typed error it carries);
 * who served it is not part of it. */
export async function foldChatEvents(
  events: AsyncIterable<RoutedEvent>,
  toError: (event: Extract<ChatEvent, { type: "error" }>) => Error = (event) => errorFromEvent(event.error),
): Promise<FoldedAnswer> {
  let text = "";
  let reasoning = "";
  let signature = "";
  let truncation: Truncation | undefined;
  const toolCalls: ToolCall[] = [];
  let finishReason: FinishReason = "stop";
  let usage: Usage = { promptTokens: 0, completionTokens: 0 };
  let timing: TimingInfo | undefined;
  let stopSequence: string | undefined;
  const logprobs: TokenLogprob[] = [];
  let sawLogprobs = false;
  for await (const event of events) {
    switch (event.type) {
      case "text-delta":
        text += event.text;
        if (event.logprobs) {
          sawLogprobs = true;
          logprobs.push(...event.logprobs);
        }
        break;
      case "reasoning":
        reasoning += event.text;
        if (event.signature) signature += event.signature;
        break;
      case "truncated":
        truncation = event.truncation;
        break;
      case "tool-call":
        toolCalls.push(event.call);
        break;
      case "usage":
        usage = event.usage;
        timing = event.timing;
        break;
      case "finish":
        finishReason = event.reason;
        stopSequence = event.stopSequence;
        break;
      case "error":
        throw toError(event);
      case "served-by":
        break;
      default:
        event satisfies never;
    }
  }
  return {
    text,
    ...(reasoning ? { reasoning } : {}),
    ...(signature ? { reasoningSignature: signature } : {}),
    ...(truncation ? { truncation } : {}),
    toolCalls,
    finishReason,
    usage,
    ...(timing ? { timing } : {}),
    ...(stopSequence !== undefined ? { stopSequence } : {}),
    ...(sawLogprobs ? { logprobs } : {}),
  };
}

/** A named level as reasoning options: its budget, and the level itself for providers that take levels. */
export function reasoningForEffort(effort: ReasoningEffort): ReasoningOptions {
  return { effort, budgetTokens: REASONING_EFFORT_BUDGETS[effort] };
}
