import type {
  ChatEvent,
  ChatMessage,
  FinishReason,
  GenerateRequest,
  TokenLogprob,
  ToolCall,
  Usage,
} from "../core/chat.js";
import { droppedStream, serverSentEvents } from "./upstream.js";

/** OpenAI's Chat Completions wire format: the request body sent upstream and the events read from its answers. */

const finishReasons: Record<string, FinishReason> = {
  stop: "stop",
  length: "length",
  tool_calls: "tool-calls",
  function_call: "tool-calls",
  content_filter: "stop",
};

function messageBody(message: ChatMessage): Record<string, unknown> {
  if (message.role === "tool")
    return { role: "tool", tool_call_id: message.toolCallId ?? "", content: message.content };
  if (message.images?.length)
    return {
      role: message.role,
      content: [
        ...message.images.map((image) => ({
          type: "image_url",
          image_url: { url: `data:${image.mediaType};base64,${image.data}` },
        })),
        ...(message.content ? [{ type: "text", text: message.content }] : []),
      ],
      ...(message.name ? { name: message.name } : {}),
    };
  return {
    role: message.role,
    content: message.role === "assistant" && message.toolCalls?.length && !message.content ? null : message.content,
    ...(message.name ? { name: message.name } : {}),
    ...(message.toolCalls?.length
      ? {
          tool_calls: message.toolCalls.map((call) => ({
            id: call.id,
            type: "function",
            function: { name: call.name, arguments: call.arguments },
          })),
        }
      : {}),
  };
}

/** The internal request as an OpenAI body (always streamed: a non-streaming answer is a fold of the stream). */
export function openAIRequestBody(request: GenerateRequest, model: string): Record<string, unknown> {
  const { sampling, limits } = request;
  const body: Record<string, unknown> = {
    model,
    ...(request.wholeAnswer ? { stream: false } : { stream: true, stream_options: { include_usage: true } }),
    ...(limits.maxTokens !== undefined ? { max_tokens: limits.maxTokens } : {}),
    ...(limits.stop?.length ? { stop: limits.stop } : {}),
    ...(sampling.temperature !== undefined ? { temperature: sampling.temperature } : {}),
    ...(sampling.topP !== undefined ? { top_p: sampling.topP } : {}),
    ...(sampling.topK !== undefined ? { top_k: sampling.topK } : {}),
    ...(sampling.minP !== undefined ? { min_p: sampling.minP } : {}),
    ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
    ...(sampling.presencePenalty !== undefined ? { presence_penalty: sampling.presencePenalty } : {}),
    ...(sampling.frequencyPenalty !== undefined ? { frequency_penalty: sampling.frequencyPenalty } : {}),
    ...(sampling.repeatPenalty !== undefined ? { repeat_penalty: sampling.repeatPenalty } : {}),
    // Token ids are the upstream model's: the client chose this model and its tokenizer.
    ...(sampling.logitBias ? { logit_bias: sampling.logitBias } : {}),
  };
  if (request.logprobs !== undefined) {
    if (request.kind === "completion") body.logprobs = request.logprobs;
    else Object.assign(body, { logprobs: true, top_logprobs: request.logprobs });
  }
  const format = request.responseFormat;
  if (format?.type === "json") body.response_format = { type: "json_object" };
  else if (format?.type === "json-schema")
    body.response_format = {
      type: "json_schema",
      json_schema: { name: format.name ?? "response", schema: format.schema },
    };
  if (request.kind === "completion") return { ...body, prompt: request.prompt };
  body.messages = request.messages.map(messageBody);
  if (request.tools?.length) {
    body.tools = request.tools.map((tool) => ({
      type: "function",
      function: {
        name: tool.name,
        ...(tool.description ? { description: tool.description } : {}),
        parameters: tool.parameters,
      },
    }));
    const choice = request.toolChoice;
    if (choice)
      body.tool_choice = typeof choice === "string" ? choice : { type: "function", function: { name: choice.name } };
    if (request.parallelToolCalls !== undefined) body.parallel_tool_calls = request.parallelToolCalls;
  }
  return body;
}

interface ChunkBody {
  choices?: {
    delta?: {
      content?: string | null;
      tool_calls?: { index?: number; id?: string; function?: { name?: string; arguments?: string } }[];
    };
    text?: string;
    finish_reason?: string | null;
    logprobs?: ChatLogprobs | CompletionLogprobs | null;
  }[];
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number };
  } | null;
  error?: { message?: string };
}

export interface WireAlternative {
  token?: string;
  logprob?: number;
  bytes?: number[] | null;
}
interface ChatLogprobs {
  content?: (WireAlternative & { top_logprobs?: WireAlternative[] })[] | null;
}
interface CompletionLogprobs {
  tokens?: string[];
  token_logprobs?: (number | null)[];
  top_logprobs?: (Record<string, number> | null)[] | null;
}

function alternative(token: string, logprob: number | null | undefined, bytes?: number[] | null) {
  return { token, logprob: logprob ?? -9999, bytes: bytes ?? [...Buffer.from(token, "utf8")] };
}

/** An upstream chunk's logprobs (the chat form or the legacy completions form) in the internal shape. */
export function upstreamLogprobs(
  value: ChatLogprobs | CompletionLogprobs | null | undefined,
): TokenLogprob[] | undefined {
  if (!value) return undefined;
  if ("content" in value && Array.isArray(value.content))
    return value.content.map((entry) => ({
      ...alternative(entry.token ?? "", entry.logprob, entry.bytes),
      top: (entry.top_logprobs ?? []).map((top) => alternative(top.token ?? "", top.logprob, top.bytes)),
    }));
  const legacy = value as CompletionLogprobs;
  if (!Array.isArray(legacy.tokens)) return undefined;
  return legacy.tokens.map((token, index) => ({
    ...alternative(token, legacy.token_logprobs?.[index]),
    top: Object.entries(legacy.top_logprobs?.[index] ?? {})
      .sort((a, b) => b[1] - a[1])
      .map(([candidate, logprob]) => alternative(candidate, logprob)),
  }));
}

/** OpenAI stream chunks → ChatEvents: text as it comes, tool calls once complete, then usage and finish. */
export async function* openAIEvents(name: string, body: AsyncIterable<Uint8Array>): AsyncGenerator<ChatEvent> {
  const calls = new Map<number, ToolCall>();
  let usage: Usage | undefined;
  let finish: FinishReason | undefined;
  let done = false;
  try {
    for await (const frame of serverSentEvents(body, name)) {
      if (frame.data === "[DONE]") {
        done = true;
        break;
      }
      const chunk = JSON.parse(frame.data) as ChunkBody;
      if (chunk.error) {
        yield {
          type: "error",
          error: {
            message: `provider ${name}: ${chunk.error.message ?? "stream error"}`,
            code: "upstream_error",
            status: 502,
            retryable: true,
          },
        };
        return;
      }
      if (chunk.usage) {
        usage = {
          promptTokens: chunk.usage.prompt_tokens ?? 0,
          completionTokens: chunk.usage.completion_tokens ?? 0,
          ...(chunk.usage.prompt_tokens_details?.cached_tokens !== undefined
            ? { cachedTokens: chunk.usage.prompt_tokens_details.cached_tokens }
            : {}),
        };
      }
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      const text = choice.delta?.content ?? choice.text;
      const logprobs = upstreamLogprobs(choice.logprobs);
      if (text || logprobs?.length)
        yield logprobs?.length
          ? { type: "text-delta", text: text ?? "", logprobs }
          : { type: "text-delta", text: text ?? "" };
      for (const part of choice.delta?.tool_calls ?? []) {
        const index = part.index ?? 0;
        const call = calls.get(index) ?? { id: "", name: "", arguments: "" };
        if (part.id) call.id = part.id;
        if (part.function?.name) call.name += part.function.name;
        if (part.function?.arguments) call.arguments += part.function.arguments;
        calls.set(index, call);
      }
      if (choice.finish_reason) finish = finishReasons[choice.finish_reason] ?? "stop";
    }
  } catch (error) {
    yield errorEvent(droppedStream(name, error));
    return;
  }
  if (!done && finish === undefined) {
    yield errorEvent(droppedStream(name, new Error("ended without a finish reason")));
    return;
  }
  for (const [index, call] of [...calls.entries()].sort((a, b) => a[0] - b[0]))
    yield { type: "tool-call", call: { ...call, id: call.id || `call_${index}` } };
  if (usage) yield { type: "usage", usage };
  yield { type: "finish", reason: finish ?? "stop" };
}

interface AnswerBody {
  choices?: {
    message?: {
      content?: string | null;
      tool_calls?: { id?: string; function?: { name?: string; arguments?: string } }[];
    };
    text?: string;
    finish_reason?: string | null;
    logprobs?: ChatLogprobs | CompletionLogprobs | null;
  }[];
  usage?: ChunkBody["usage"];
}

/** A whole (non-streamed) OpenAI answer → the same events a stream of it gives. */
export function* openAIAnswerEvents(name: string, text: string): Generator<ChatEvent> {
  let body: AnswerBody;
  try {
    body = JSON.parse(text) as AnswerBody;
  } catch {
    yield errorEvent(droppedStream(name, new Error("the answer is not JSON")));
    return;
  }
  const choice = body.choices?.[0];
  if (!choice) {
    yield errorEvent(droppedStream(name, new Error("the answer has no choices")));
    return;
  }
  const content = choice.message?.content ?? choice.text ?? "";
  const logprobs = upstreamLogprobs(choice.logprobs);
  if (content || logprobs?.length)
    yield logprobs?.length ? { type: "text-delta", text: content, logprobs } : { type: "text-delta", text: content };
  for (const [index, call] of (choice.message?.tool_calls ?? []).entries())
    yield {
      type: "tool-call",
      call: {
        id: call.id || `call_${index}`,
        name: call.function?.name ?? "",
        arguments: call.function?.arguments ?? "",
      },
    };
  if (body.usage)
    yield {
      type: "usage",
      usage: {
        promptTokens: body.usage.prompt_tokens ?? 0,
        completionTokens: body.usage.completion_tokens ?? 0,
        ...(body.usage.prompt_tokens_details?.cached_tokens !== undefined
          ? { cachedTokens: body.usage.prompt_tokens_details.cached_tokens }
          : {}),
      },
    };
  yield { type: "finish", reason: finishReasons[choice.finish_reason ?? "stop"] ?? "stop" };
}

export function errorEvent(error: { message: string; code: string; status: number; retryable: boolean }): ChatEvent {
  return {
    type: "error",
    error: { message: error.message, code: error.code, status: error.status, retryable: error.retryable },
  };
}
