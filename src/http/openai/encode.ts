import { randomBytes } from "node:crypto";
import type { ChatEvent, FinishReason, FoldedAnswer, TokenLogprob, ToolCall, Usage } from "../../core/chat.js";
import { errorFromEvent } from "../../core/errors.js";
import { type AnswerEncoder, foldedWith } from "../generateRoute.js";
import { sseStream } from "../sse.js";
import { truncationField } from "../truncation.js";
import { openAIErrorBody } from "./errors.js";
import { chatLogprobs, completionLogprobs } from "./logprobs.js";
import type { ChatCompletionBody, CompletionBody } from "./schemas.js";

/** Chat Completions and Completions answers: the whole body, or its SSE chunks, from the core stream. */

const finishReasons: Record<FinishReason, string | null> = {
  stop: "stop",
  length: "length",
  "tool-calls": "tool_calls",
  error: "stop",
  cancelled: "stop",
};

function usageBody(usage: Usage) {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
    ...(usage.cachedTokens !== undefined ? { prompt_tokens_details: { cached_tokens: usage.cachedTokens } } : {}),
  };
}

function makeId(prefix: string): string {
  return `${prefix}-${randomBytes(12).toString("hex")}`;
}

/** Streams OpenAI chunks for one request; `chunk` wraps a choice in the endpoint's envelope. */
function encodeStream(
  events: AsyncIterator<ChatEvent>,
  includeUsage: boolean,
  chunk: (choice: Record<string, unknown> | null, usage?: Usage) => Record<string, unknown>,
  textChoice: (text: string, logprobs: TokenLogprob[] | undefined) => Record<string, unknown>,
  finishChoice: (reason: string | null) => Record<string, unknown>,
  firstChoice?: Record<string, unknown>,
  reasoningChoice?: (text: string) => Record<string, unknown>,
): ReadableStream<Uint8Array> {
  let usage: Usage | undefined;
  let sentFirst = firstChoice === undefined;
  let toolIndex = 0;
  return sseStream(
    events,
    (event) => {
      const frames: string[] = [];
      if (!sentFirst) {
        sentFirst = true;
        frames.push(JSON.stringify(chunk(firstChoice!)));
      }
      switch (event.type) {
        case "text-delta":
          frames.push(JSON.stringify(chunk(textChoice(event.text, event.logprobs))));
          break;
        case "reasoning":
          // Chat only (as llama-server and vLLM send it); a completion has no reasoning separated.
          // A signature-only event (an Anthropic upstream's) has no text to show here.
          if (reasoningChoice && event.text) frames.push(JSON.stringify(chunk(reasoningChoice(event.text))));
          break;
        case "tool-call": {
          // As OpenAI streams calls: the id and name first, then the arguments, under the call's index.
          const index = toolIndex++;
          const call = event.call;
          frames.push(
            JSON.stringify(
              chunk(
                toolCallChoice({ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }),
              ),
            ),
            JSON.stringify(chunk(toolCallChoice({ index, function: { arguments: call.arguments } }))),
          );
          break;
        }
        case "usage":
          usage = event.usage;
          break;
        case "finish":
          frames.push(JSON.stringify(chunk(finishChoice(finishReasons[event.reason]))));
          if (includeUsage && usage) frames.push(JSON.stringify(chunk(null, usage)));
          break;
        case "error":
          frames.push(JSON.stringify(openAIErrorBody(errorFromEvent(event.error)).body));
          break;
      }
      return frames.length === 0 ? null : frames.join("\n\ndata: ");
    },
    { done: "[DONE]", onError: (error) => JSON.stringify(openAIErrorBody(error).body) },
  );
}

function toolCallChoice(call: Record<string, unknown>): Record<string, unknown> {
  return { index: 0, delta: { tool_calls: [call] }, logprobs: null, finish_reason: null };
}

function toolCallsBody(calls: ToolCall[]) {
  return calls.map((call) => ({
    id: call.id,
    type: "function",
    function: { name: call.name, arguments: call.arguments },
  }));
}

/** The fields every streamed chunk of one answer shares; `usage` is null until the usage chunk when requested. */
function chunkEnvelope(object: string, id: string, created: number, model: string, includeUsage: boolean) {
  return (choice: Record<string, unknown> | null, usage?: Usage) => ({
    id,
    object,
    created,
    model,
    system_fingerprint: "freehold",
    choices: choice ? [choice] : [],
    ...(includeUsage ? { usage: usage ? usageBody(usage) : null } : {}),
  });
}

/** A whole (non-streamed) answer: its one choice in the endpoint's envelope, with usage and any truncation. */
function wholeBody(
  object: string,
  id: string,
  created: number,
  model: string,
  answer: FoldedAnswer,
  choice: Record<string, unknown>,
) {
  return {
    id,
    object,
    created,
    model,
    system_fingerprint: "freehold",
    choices: [choice],
    usage: usageBody(answer.usage),
    ...truncationField(answer.truncation),
  };
}

/** The encoder of one /v1/chat/completions request. */
export function chatEncoder(body: ChatCompletionBody): AnswerEncoder<ChatEvent> {
  const id = makeId("chatcmpl");
  const created = Math.floor(Date.now() / 1000);
  return {
    whole: foldedWith((answer) =>
      wholeBody("chat.completion", id, created, body.model, answer, {
        index: 0,
        message: {
          role: "assistant",
          content: answer.toolCalls.length > 0 && !answer.text ? null : answer.text,
          ...(answer.reasoning ? { reasoning_content: answer.reasoning } : {}),
          ...(answer.toolCalls.length > 0 ? { tool_calls: toolCallsBody(answer.toolCalls) } : {}),
          refusal: null,
        },
        logprobs: chatLogprobs(answer.logprobs),
        finish_reason: finishReasons[answer.finishReason],
      }),
    ),
    stream(events) {
      const includeUsage = body.stream_options?.include_usage === true;
      return encodeStream(
        events,
        includeUsage,
        chunkEnvelope("chat.completion.chunk", id, created, body.model, includeUsage),
        (text, logprobs) => ({
          index: 0,
          delta: { content: text },
          logprobs: chatLogprobs(logprobs),
          finish_reason: null,
        }),
        (reason) => ({ index: 0, delta: {}, logprobs: null, finish_reason: reason }),
        { index: 0, delta: { role: "assistant", content: "" }, logprobs: null, finish_reason: null },
        (text) => ({ index: 0, delta: { reasoning_content: text }, logprobs: null, finish_reason: null }),
      );
    },
  };
}

/** The encoder of one /v1/completions request. */
export function completionEncoder(body: CompletionBody): AnswerEncoder<ChatEvent> {
  const id = makeId("cmpl");
  const created = Math.floor(Date.now() / 1000);
  return {
    whole: foldedWith((answer) =>
      wholeBody("text_completion", id, created, body.model, answer, {
        text: answer.text,
        index: 0,
        logprobs: completionLogprobs(answer.logprobs, 0),
        finish_reason: finishReasons[answer.finishReason],
      }),
    ),
    stream(events) {
      const includeUsage = body.stream_options?.include_usage === true;
      let offset = 0;
      return encodeStream(
        events,
        includeUsage,
        chunkEnvelope("text_completion", id, created, body.model, includeUsage),
        (text, logprobs) => {
          const choice = { text, index: 0, logprobs: completionLogprobs(logprobs, offset), finish_reason: null };
          offset += text.length;
          return choice;
        },
        (reason) => ({ text: "", index: 0, logprobs: null, finish_reason: reason }),
      );
    },
  };
}
