import type {
  ChatEvent,
  EmbeddingRequest,
  EmbeddingResult,
  GenerateRequest,
  ModelInfo,
  ModelPort,
} from "../core/chat.js";
import type { PreparedCall } from "../core/egress.js";

export type ProviderKind = "local" | "openai" | "anthropic" | "ollama";

/**
 * Something that answers, local or remote. Every call that carries content is prepared first: a remote provider
 * builds the exact body it would send and sends only the body it is handed back, so the caller (the router's
 * privacy policy) sees, and may redact, everything that leaves. There is no way to send content without that step.
 */
export interface Provider {
  readonly name: string;
  readonly kind: ProviderKind;
  /** The origin requests are sent to (`https://api.openai.com`); null for the local engine: nothing leaves. */
  readonly origin: string | null;
  prepareGenerate(request: GenerateRequest): PreparedCall<AsyncIterable<ChatEvent>>;
  prepareEmbed(request: EmbeddingRequest): PreparedCall<Promise<EmbeddingResult>>;
  /** Prompt tokens the request would use, without generating (Anthropic's count_tokens). */
  prepareCountTokens(request: GenerateRequest): PreparedCall<Promise<number>>;
  listModels(): Promise<ModelInfo[]>;
  /** Resolves when the provider answers; throws (with the reason) when it does not. */
  health(signal?: AbortSignal): Promise<void>;
}

/** The local engine as a provider. */
export function localProvider(engine: ModelPort, name = "local"): Provider {
  return {
    name,
    kind: "local",
    origin: null,
    prepareGenerate: (request) => ({ outgoing: null, run: (signal) => engine.generate(request, signal) }),
    prepareEmbed: (request) => ({ outgoing: null, run: (signal) => engine.embed(request, signal) }),
    prepareCountTokens: (request) => ({ outgoing: null, run: () => engine.countTokens(request) }),
    listModels: () => engine.listModels(),
    health: async () => {},
  };
}

/**
 * Runs a prepared call with the body as built, without a privacy check. Only for the owner's own direct use of a
 * provider (`freehold eval` with `provider/model`, the owner's data and choice); client requests go through the
 * router, which checks every outgoing body.
 */
export function runAsBuilt<T>(call: PreparedCall<T>, signal?: AbortSignal): T {
  return call.outgoing === null ? call.run(signal) : call.send(call.outgoing.body, signal);
}
