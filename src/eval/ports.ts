import type { ChatEvent, EmbeddingResult, GenerateRequest } from "../core/chat.js";

/** Where an answer came from: the local engine, or a provider (prices are looked up by `model`). */
export interface ServedBy {
  provider: string;
  model: string;
  remote: boolean;
}

/**
 * How an evaluation reaches models, by the names a person types: a local model (`stories`), a route from
 * freehold.yaml (`smart`), or `provider/model` for a provider from freehold.yaml. The composition root implements it.
 */
export interface EvalModels {
  generate(
    spec: string,
    request: GenerateRequest,
    signal?: AbortSignal,
  ): { events: AsyncIterable<ChatEvent>; servedBy: () => ServedBy };
  embed(spec: string, input: string[], signal?: AbortSignal): Promise<EmbeddingResult>;
  /** Throws, with a message a person can act on, when the name does not resolve. */
  check(spec: string): Promise<void>;
}

/** USD for tokens on a priced model, and electricity for local work (the control plane's PriceTable fits). */
export interface Pricing {
  cost(model: string, inputTokens: number, outputTokens: number): number | null;
  energyCost(durationMs: number): number;
}
