/**
 * llama-server's native API as the llama-server engine uses it: the answers' shapes, the /completion request a runner
 * request becomes, and llama-server's errors in the runner protocol's terms.
 */
import type { ChatRequest, TokenLogprob } from "../../core/chat.js";
import { requestError } from "./errors.js";
import type { LlamaServerHttpError } from "./llamaServerClient.js";
import type { LoadOptions, RunnerRequest } from "./protocol.js";

export type GenerateMessage = RunnerRequest;

/** A chat request's chat-only fields (tools, messages), or none for a completion. */
export function chatOf(request: RunnerRequest): Partial<ChatRequest> {
  return request.kind === "chat" ? request : {};
}

/** The ChatML fallback's end marker, plain text in models that have no such token. */
export const FALLBACK_STOP = "<|im_end|>";

export interface Props {
  default_generation_settings: { n_ctx: number };
  total_slots: number;
  chat_template?: string;
  modalities?: { vision?: boolean; audio?: boolean };
  media_marker?: string;
  eos_token?: string;
}

export interface ModelsAnswer {
  data: { meta?: { n_vocab?: number; n_ctx_train?: number; n_embd?: number } }[];
}

export interface ProbabilityEntry {
  id: number;
  token: string;
  bytes: number[];
  logprob?: number;
  prob?: number;
  top_logprobs?: ProbabilityEntry[];
  top_probs?: ProbabilityEntry[];
}

export interface CompletionChunk {
  content: string;
  tokens?: number[];
  stop: boolean;
  tokens_predicted?: number;
  tokens_evaluated?: number;
  stop_type?: "none" | "eos" | "limit" | "word";
  stopping_word?: string;
  timings?: { cache_n?: number; prompt_n?: number; prompt_ms?: number; predicted_ms?: number };
  completion_probabilities?: ProbabilityEntry[];
}

function logOf(entry: ProbabilityEntry): number {
  if (entry.logprob !== undefined) return Math.max(entry.logprob, -9999);
  return entry.prob !== undefined && entry.prob > 0 ? Math.max(Math.log(entry.prob), -9999) : -9999;
}

export function toLogprob(entry: ProbabilityEntry, alternatives: number): TokenLogprob {
  const top = (entry.top_logprobs ?? entry.top_probs ?? []).slice(0, alternatives).map((candidate) => ({
    token: candidate.token,
    bytes: candidate.bytes,
    logprob: logOf(candidate),
  }));
  return { token: entry.token, bytes: entry.bytes, logprob: logOf(entry), top };
}

export function gpuLayersArgument(layers: LoadOptions["gpuLayers"]): string {
  return layers === "max" ? "all" : String(layers);
}

/**
 * The /completion body for a generation: the prompt (token ids, or text with media markers and the images), the
 * request's sampling with node-llama-cpp's defaults where it says nothing (llama-server's own differ), its stops and
 * limits; `extra` carries the grammar and logit biases.
 */
export function completionBody(
  message: GenerateMessage,
  prompt: { tokens?: number[]; text?: string; images: string[]; stops: string[] },
  maxTokens: number,
  extra: Record<string, unknown>,
): Record<string, unknown> {
  const sampling = message.sampling;
  const stops = [...(message.limits.stop ?? []), ...prompt.stops];
  const temperature = sampling.temperature ?? 0.8;
  return {
    prompt: prompt.tokens ?? { prompt_string: prompt.text, multimodal_data: prompt.images },
    stream: true,
    n_predict: maxTokens,
    temperature,
    // node-llama-cpp's defaults where a request says nothing (llama-server's own differ: top_k 40, min_p 0.05...).
    top_k: sampling.topK ?? 40,
    top_p: sampling.topP ?? 0.95,
    min_p: sampling.minP ?? 0.05,
    repeat_penalty: sampling.repeatPenalty ?? 1,
    repeat_last_n: sampling.repeatLastN ?? 64,
    presence_penalty: sampling.presencePenalty ?? 0,
    frequency_penalty: sampling.frequencyPenalty ?? 0,
    ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
    ...(stops.length > 0 ? { stop: stops } : {}),
    ...(message.limits.ignoreEos ? { ignore_eos: true } : {}),
    ...(message.logprobs !== undefined
      ? { n_probs: Math.max(1, message.logprobs), post_sampling_probs: temperature > 0 }
      : {}),
    ...extra,
    cache_prompt: true,
  };
}

/** llama-server's request errors, in the runner protocol's terms. */
export function translateError(error: LlamaServerHttpError): Error {
  const text = error.message;
  if (/json.?schema|grammar/i.test(text))
    return requestError(
      `the JSON schema cannot be turned into a grammar: ${text}`,
      "invalid_schema",
      400,
      "response_format",
    );
  if (/exceed|context size|too long/i.test(text))
    return requestError(
      `the prompt does not fit this model's context: ${text}`,
      "context_length_exceeded",
      400,
      "messages",
    );
  if (/image|media|bitmap|decode/i.test(text))
    return requestError(`an image could not be read: ${text}`, "invalid_image", 400, "messages");
  if (error.status >= 400 && error.status < 500) return requestError(text, "invalid_request", 400);
  return Object.assign(new Error(`llama-server: ${text}`), { code: "runner_error", status: 500 });
}
