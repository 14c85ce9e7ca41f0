import type {
  ChatEvent,
  FinishReason,
  FoldedAnswer,
  TimingInfo,
  TokenLogprob,
  ToolCall,
  Usage,
} from "../../core/chat.js";
import { withoutPaths } from "../../core/errors.js";
import { type AnswerEncoder, foldedWith } from "../generateRoute.js";
import { ndjsonStream } from "../ndjson.js";
import { truncationField } from "../truncation.js";
import { ollamaErrorBody } from "./errors.js";
import type { OllamaChatBody, OllamaGenerateBody } from "./schemas.js";

/** /api/chat and /api/generate answers: the whole body, or its NDJSON lines, from the core stream. */

const doneReasons: Record<FinishReason, string> = {
  stop: "stop",
  length: "length",
  "tool-calls": "stop",
  error: "stop",
  cancelled: "stop",
};

export const nanoseconds = (ms: number) => Math.round(ms * 1e6);

/** Ollama's closing statistics: counts and durations in nanoseconds. */
function stats(started: number, usage: Usage | undefined, timing: TimingInfo | undefined) {
  return {
    total_duration: nanoseconds(performance.now() - started),
    load_duration: 0,
    prompt_eval_count: usage?.promptTokens ?? 0,
    prompt_eval_duration: nanoseconds(timing?.promptMs ?? 0),
    eval_count: usage?.completionTokens ?? 0,
    eval_duration: nanoseconds(timing?.generationMs ?? 0),
  };
}

/**
 * Streams one answer as Ollama's NDJSON: a line per text piece, then a closing line with done, done_reason and
 * statistics. `piece` and `closing` shape /api/chat's `message` or /api/generate's `response`.
 */
function encodeAnswer(
  events: AsyncIterator<ChatEvent>,
  model: string,
  started: number,
  piece: (text: string) => Record<string, unknown>,
  thought: (text: string) => Record<string, unknown>,
): ReadableStream<Uint8Array> {
  let usage: Usage | undefined;
  let timing: TimingInfo | undefined;
  return ndjsonStream(
    events,
    (event) => {
      const createdAt = new Date().toISOString();
      switch (event.type) {
        case "text-delta":
          return [
            { model, created_at: createdAt, ...piece(event.text), ...logprobsField(event.logprobs), done: false },
          ];
        case "reasoning":
          // A signature-only event (an Anthropic upstream's) has no text to show here.
          if (!event.text) return [];
          return [{ model, created_at: createdAt, ...thought(event.text), done: false }];
        case "tool-call":
          return [
            {
              model,
              created_at: createdAt,
              message: { role: "assistant", content: "", tool_calls: [ollamaToolCall(event.call)] },
              done: false,
            },
          ];
        case "usage":
          usage = event.usage;
          timing = event.timing;
          return [];
        case "truncated":
          // Said by the x-freehold-truncated header before the stream starts.
          return [];
        case "finish":
          return [
            {
              model,
              created_at: createdAt,
              ...piece(""),
              done: true,
              done_reason: doneReasons[event.reason],
              ...stats(started, usage, timing),
            },
          ];
        case "error":
          return [{ error: withoutPaths(event.error.message, event.error.status >= 500) }];
      }
    },
    (error) => ollamaErrorBody(error).body,
  );
}

/** Ollama's `logprobs`: one entry per token, each with its `top_logprobs`. */
function logprobsField(entries: TokenLogprob[] | undefined) {
  if (!entries) return {};
  const entry = (item: Omit<TokenLogprob, "top">) => ({ token: item.token, logprob: item.logprob, bytes: item.bytes });
  return { logprobs: entries.map((item) => ({ ...entry(item), top_logprobs: item.top.map(entry) })) };
}

/** Ollama sends a call's arguments as an object, not a JSON text. */
function ollamaToolCall(call: ToolCall) {
  return { function: { name: call.name, arguments: JSON.parse(call.arguments || "{}") as unknown } };
}

/** How /api/chat and /api/generate differ: where the answer's text and thinking go, whole and streamed. */
interface AnswerShape {
  whole(answer: FoldedAnswer): Record<string, unknown>;
  piece(text: string): Record<string, unknown>;
  thought(text: string): Record<string, unknown>;
}

function ollamaEncoder(model: string, shape: AnswerShape): AnswerEncoder<ChatEvent> {
  const started = performance.now();
  return {
    whole: foldedWith((answer) => ({
      model,
      created_at: new Date().toISOString(),
      ...shape.whole(answer),
      done_reason: doneReasons[answer.finishReason],
      done: true,
      ...stats(started, answer.usage, answer.timing),
      ...logprobsField(answer.logprobs),
      ...truncationField(answer.truncation),
    })),
    stream: (events) => encodeAnswer(events, model, started, shape.piece, shape.thought),
  };
}

/** The encoder of one /api/chat request; `model` as the client named it. */
export function chatEncoder(body: OllamaChatBody): AnswerEncoder<ChatEvent> {
  return ollamaEncoder(body.model, {
    whole: (answer) => ({
      message: {
        role: "assistant",
        content: answer.text,
        ...(answer.reasoning ? { thinking: answer.reasoning } : {}),
        ...(answer.toolCalls.length > 0 ? { tool_calls: answer.toolCalls.map(ollamaToolCall) } : {}),
      },
    }),
    piece: (text) => ({ message: { role: "assistant", content: text } }),
    thought: (text) => ({ message: { role: "assistant", content: "", thinking: text } }),
  });
}

/** The encoder of one /api/generate request. */
export function generateEncoder(body: OllamaGenerateBody): AnswerEncoder<ChatEvent> {
  return ollamaEncoder(body.model, {
    whole: (answer) => ({ response: answer.text, ...(answer.reasoning ? { thinking: answer.reasoning } : {}) }),
    piece: (text) => ({ response: text }),
    thought: (text) => ({ response: "", thinking: text }),
  });
}
