import { randomBytes } from "node:crypto";
import type { ChatEvent, FinishReason, FoldedAnswer, ToolCall, Usage } from "../../core/chat.js";
import { errorFromEvent } from "../../core/errors.js";
import { type AnswerEncoder, foldedWith } from "../generateRoute.js";
import { type SseEvent, sseEventStream } from "../sse.js";
import { anthropicErrorBody } from "./errors.js";
import type { MessagesBody } from "./schemas.js";

/** Anthropic's Messages answers: the whole message, or its named SSE events, from the core stream. */

/** Anthropic's stop_reason for each way a generation ends. */
export type StopReason = "end_turn" | "max_tokens" | "stop_sequence" | "tool_use";

/** Internal finish reasons → Anthropic's; a "stop" that names the caller's stop sequence is "stop_sequence". */
const stopReasons: Record<FinishReason, StopReason> = {
  stop: "end_turn",
  length: "max_tokens",
  "tool-calls": "tool_use",
  error: "end_turn",
  cancelled: "end_turn",
};

/** stop_reason and stop_sequence, as both the message and the stream's message_delta carry them. */
export function stopFields(reason: FinishReason, stopSequence: string | undefined) {
  return stopSequence !== undefined && reason === "stop"
    ? { stop_reason: "stop_sequence" as const, stop_sequence: stopSequence }
    : { stop_reason: stopReasons[reason], stop_sequence: null };
}

export function messageId(): string {
  return `msg_${randomBytes(12).toString("hex")}`;
}

/** Anthropic counts cached prompt tokens apart: input_tokens + cache_read_input_tokens is the whole prompt. */
export function usageBody(usage: Usage) {
  const cached = usage.cachedTokens ?? 0;
  return {
    input_tokens: usage.promptTokens - cached,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: cached,
    output_tokens: usage.completionTokens,
  };
}

/** A tool_use block; call ids keep their random part under Anthropic's `toolu_` prefix. */
export function toolUseBlock(call: ToolCall, input: unknown = JSON.parse(call.arguments)) {
  return {
    type: "tool_use" as const,
    id: call.id.startsWith("call_") ? `toolu_${call.id.slice("call_".length)}` : call.id,
    name: call.name,
    input,
  };
}

/** The envelope shared by the non-streamed message and the stream's message_start. */
export function messageEnvelope(id: string, model: string) {
  return { id, type: "message" as const, role: "assistant" as const, model };
}

/** A whole message from a folded answer: its text (if any, or if there is nothing else), then its tool calls. */
export function messageBody(id: string, model: string, answer: FoldedAnswer) {
  const content: object[] = [];
  // A local model's thinking has no signature to verify: an empty one (the field is in Anthropic's shape). An
  // Anthropic upstream's signature is passed on as it came.
  if (answer.reasoning)
    content.push({ type: "thinking", thinking: answer.reasoning, signature: answer.reasoningSignature ?? "" });
  if (answer.text || answer.toolCalls.length === 0) content.push({ type: "text", text: answer.text });
  for (const call of answer.toolCalls) content.push(toolUseBlock(call));
  return {
    ...messageEnvelope(id, model),
    content,
    ...stopFields(answer.finishReason, answer.stopSequence),
    stop_details: null,
    usage: usageBody(answer.usage),
  };
}

/** An event whose name is its data's `type`, as Anthropic sends them all. */
function named<T extends { type: string }>(data: T): SseEvent {
  return { event: data.type, data };
}

function errorEvent(error: unknown): SseEvent {
  return named(anthropicErrorBody(error).body);
}

/**
 * Streams one answer as Anthropic's events: message_start; per content block content_block_start (the first
 * followed by ping), its deltas and content_block_stop; then message_delta (stop_reason, usage) and message_stop.
 * A text block opens at the first text and a tool_use block per call, each at the next index. A failure is an
 * `error` event, after which nothing more is sent. `inputTokens` is the prompt as counted before generating; the
 * closing message_delta carries the final split into input and cache-read tokens.
 */
export function messageStream(
  events: AsyncIterator<ChatEvent>,
  message: { id: string; model: string; inputTokens: number },
): ReadableStream<Uint8Array> {
  let index = -1;
  let textOpen = false;
  let thinkingOpen = false;
  /** A text or tool_use block was opened (thinking alone is not an answer). */
  let answered = false;
  let started = false;
  let ended = false;
  let usage: Usage | undefined;

  const start = (out: SseEvent[]) => {
    if (started) return;
    started = true;
    out.push(
      named({
        type: "message_start",
        message: {
          ...messageEnvelope(message.id, message.model),
          content: [],
          stop_reason: null,
          stop_sequence: null,
          stop_details: null,
          usage: usageBody({ promptTokens: message.inputTokens, completionTokens: 0 }),
        },
      }),
    );
  };
  const openBlock = (out: SseEvent[], block: Record<string, unknown>) => {
    index++;
    if (block.type !== "thinking") answered = true;
    out.push(named({ type: "content_block_start", index, content_block: block }));
    if (index === 0) out.push(named({ type: "ping" }));
  };
  const closeText = (out: SseEvent[]) => {
    if (!textOpen && !thinkingOpen) return;
    textOpen = false;
    thinkingOpen = false;
    out.push(named({ type: "content_block_stop", index }));
  };
  const finish = (out: SseEvent[], reason: FinishReason, stopSequence?: string) => {
    ended = true;
    // Like the non-streamed message, an answer with no text or call still has one (empty) text block.
    if (!answered) {
      closeText(out);
      openBlock(out, { type: "text", text: "" });
      textOpen = true;
    }
    closeText(out);
    out.push(
      named({
        type: "message_delta",
        delta: { ...stopFields(reason, stopSequence), stop_details: null },
        usage: usage ? usageBody(usage) : { output_tokens: 0 },
      }),
      named({ type: "message_stop" }),
    );
  };

  return sseEventStream(
    events,
    (event) => {
      if (ended) return [];
      const out: SseEvent[] = [];
      start(out);
      switch (event.type) {
        case "reasoning":
          if (!event.text && !event.signature) break;
          if (!thinkingOpen) {
            closeText(out);
            openBlock(out, { type: "thinking", thinking: "", signature: "" });
            thinkingOpen = true;
          }
          if (event.text)
            out.push(
              named({ type: "content_block_delta", index, delta: { type: "thinking_delta", thinking: event.text } }),
            );
          // An Anthropic upstream's signature, as Anthropic sends it: a delta at the thinking block's end.
          if (event.signature)
            out.push(
              named({
                type: "content_block_delta",
                index,
                delta: { type: "signature_delta", signature: event.signature },
              }),
            );
          break;
        case "text-delta":
          if (!event.text) break;
          if (!textOpen) {
            closeText(out);
            openBlock(out, { type: "text", text: "" });
            textOpen = true;
          }
          out.push(named({ type: "content_block_delta", index, delta: { type: "text_delta", text: event.text } }));
          break;
        case "tool-call":
          // The whole call is known at once: its block opens with empty input, then the arguments in one delta.
          closeText(out);
          openBlock(out, toolUseBlock(event.call, {}));
          out.push(
            named({
              type: "content_block_delta",
              index,
              delta: { type: "input_json_delta", partial_json: event.call.arguments },
            }),
            named({ type: "content_block_stop", index }),
          );
          break;
        case "usage":
          usage = event.usage;
          break;
        case "truncated":
          // Said by the x-freehold-truncated header (routes.ts) before the stream starts.
          break;
        case "finish":
          finish(out, event.reason, event.stopSequence);
          break;
        case "error":
          ended = true;
          out.push(errorEvent(errorFromEvent(event.error)));
          break;
        default:
          event satisfies never;
      }
      return out;
    },
    {
      // A source that ends without a finish event still gets a well-formed ending.
      close: () => {
        if (ended) return [];
        const out: SseEvent[] = [];
        start(out);
        finish(out, "stop");
        return out;
      },
      onError: errorEvent,
    },
  );
}

/** The encoder of one POST /v1/messages request; `model` as the client named it. */
export function messageEncoder(body: MessagesBody): AnswerEncoder<ChatEvent> {
  const id = messageId();
  return {
    whole: foldedWith((answer) => messageBody(id, body.model, answer)),
    stream: (events, prompt) => messageStream(events, { id, model: body.model, inputTokens: prompt.inputTokens ?? 0 }),
  };
}
