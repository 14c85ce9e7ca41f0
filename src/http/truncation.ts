import type { Truncation } from "../core/chat.js";

/**
 * An answer whose prompt was cut says so (docs/overflow.md): header `x-freehold-truncated` on every API, and a
 * `freehold_truncation` field in the OpenAI and Ollama bodies.
 */
export function truncationOf(event: unknown): Truncation | undefined {
  const e = event as { type?: string; truncation?: Truncation } | undefined;
  return e?.type === "truncated" ? e.truncation : undefined;
}

export function truncationHeaders(truncation: Truncation | undefined): Record<string, string> {
  if (!truncation) return {};
  const t = truncation;
  return {
    "x-freehold-truncated": `${t.policy}; prompt_tokens=${t.promptTokens}; kept_tokens=${t.keptTokens}; context=${t.contextSize}; dropped_messages=${t.droppedMessages}; dropped_tokens=${t.droppedTokens}`,
  };
}

export function truncationField(truncation: Truncation | undefined): Record<string, unknown> {
  if (!truncation) return {};
  return {
    freehold_truncation: {
      policy: truncation.policy,
      prompt_tokens: truncation.promptTokens,
      kept_tokens: truncation.keptTokens,
      context_window: truncation.contextSize,
      dropped_messages: truncation.droppedMessages,
      dropped_tokens: truncation.droppedTokens,
    },
  };
}
