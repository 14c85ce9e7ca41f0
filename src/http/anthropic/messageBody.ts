import { randomBytes } from "node:crypto";
import type { FinishReason, FoldedAnswer, ToolCall, Usage } from "../../core/chat.js";

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
