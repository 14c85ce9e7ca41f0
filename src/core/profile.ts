import type { ChatMessage, GenerateRequest, GenerationLimits, OverflowPolicy, SamplingOptions } from "./chat.js";
import type { FlashAttentionMode, KvCacheType } from "./memorySettings.js";

/**
 * A profile customises a model without copying it (what Ollama's Modelfile does): a system prompt, default sampling
 * and limits, example messages, and a chat-template override. Values a request sets win over the profile's.
 */
export interface ModelProfile {
  /** Used when the conversation has no system message of its own. */
  system?: string;
  /** A Jinja chat template (the GGUF `tokenizer.chat_template` dialect) used instead of the model's own. */
  template?: string;
  /** Defaults for sampling; a request's own values override them. */
  sampling?: SamplingOptions;
  /** Defaults for maxTokens and stop; a request's own values override them. */
  limits?: Pick<GenerationLimits, "maxTokens" | "stop">;
  /** Example turns placed before the conversation (after the system prompt). */
  messages?: Pick<ChatMessage, "role" | "content">[];
  license?: string;
  /**
   * MCP servers (names under `mcp_servers` in freehold.yaml) whose tools freehold runs for every chat request to
   * this model, as a route's `mcp:` does (docs/mcp.md).
   */
  mcp?: string[];
  /** The KV cache's element type for this model (instead of FREEHOLD_KV_CACHE_TYPE). */
  kvCacheType?: KvCacheType;
  /** Flash attention for this model (instead of FREEHOLD_FLASH_ATTENTION). */
  flashAttention?: FlashAttentionMode;
  /** A smaller model (same vocabulary) that drafts tokens this one verifies: speculative decoding. */
  draft?: string;
  /** What to do with a prompt longer than the context (GenerateRequest.overflow); a request's own value wins. */
  overflow?: OverflowPolicy;
  /** The engine this model runs on, over FREEHOLD_ENGINE (auto, node-llama-cpp, llama-server). */
  engine?: "auto" | "node-llama-cpp" | "llama-server";
}

/** Where the gateway finds the profile of a model name (the model store); undefined when the name has none. */
export interface ProfileSource {
  profile(model: string): Promise<ModelProfile | undefined>;
}

function defined<T extends object>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/**
 * The request as the model should see it: profile defaults under the request's own values, the profile's system
 * prompt when the conversation brings none, and its example messages before the conversation.
 * @example
 * applyProfile({ kind: "chat", model: "bot", messages: [user], sampling: {}, limits: {} }, { system: "Be brief." });
 * // messages: [{ role: "system", content: "Be brief." }, user]
 */
export function applyProfile(request: GenerateRequest, profile: ModelProfile | undefined): GenerateRequest {
  if (!profile) return request;
  const sampling = { ...profile.sampling, ...defined(request.sampling) };
  const limits: GenerationLimits = { ...defined(profile.limits ?? {}), ...defined(request.limits) };
  const overflow = request.overflow ?? profile.overflow;
  if (request.kind !== "chat") return { ...request, sampling, limits, ...(overflow ? { overflow } : {}) };
  const messages = [...request.messages];
  const hasSystem = messages[0]?.role === "system";
  const examples = (profile.messages ?? []).map((message) => ({ role: message.role, content: message.content }));
  const lead: ChatMessage[] = hasSystem
    ? [messages.shift()!]
    : profile.system
      ? [{ role: "system", content: profile.system }]
      : [];
  return {
    ...request,
    sampling,
    limits,
    ...(overflow ? { overflow } : {}),
    messages: [...lead, ...examples, ...messages],
  };
}
