import type { ModelPort } from "../core/chat.js";

export type ProviderKind = "local" | "openai" | "anthropic" | "ollama";

/** A ModelPort with a name, a kind, where its data goes, and a cheap health probe. */
export interface Provider extends ModelPort {
  readonly name: string;
  readonly kind: ProviderKind;
  /** The origin requests are sent to (`https://api.openai.com`); null for the local engine: nothing leaves. */
  readonly origin: string | null;
  /** Resolves when the provider answers; throws (with the reason) when it does not. */
  health(signal?: AbortSignal): Promise<void>;
}

/** The local engine as a provider. */
export function localProvider(engine: ModelPort, name = "local"): Provider {
  return {
    name,
    kind: "local",
    origin: null,
    generate: (request, signal) => engine.generate(request, signal),
    embed: (request, signal) => engine.embed(request, signal),
    listModels: () => engine.listModels(),
    countTokens: (request) => engine.countTokens(request),
    health: async () => {},
  };
}
