import type { ChatMessage, GenerateRequest, GenerationLimits, SamplingOptions } from "./chat.js";

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
  /** The engine this model runs on, over FREEHOLD_ENGINE (auto, node-llama-cpp, llama-server). */
  engine?: "auto" | "node-llama-cpp" | "llama-server";
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
  if (request.kind !== "chat") return { ...request, sampling, limits };
  const messages = [...request.messages];
  const hasSystem = messages[0]?.role === "system";
  const examples = (profile.messages ?? []).map((message) => ({ role: message.role, content: message.content }));
  const lead: ChatMessage[] = hasSystem
    ? [messages.shift()!]
    : profile.system
      ? [{ role: "system", content: profile.system }]
      : [];
  return { ...request, sampling, limits, messages: [...lead, ...examples, ...messages] };
}
