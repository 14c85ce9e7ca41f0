import type { OverflowPolicy } from "../../core/chat.js";

/**
 * Ollama's `truncate` and `shift` (its ChatRequest/GenerateRequest fields) → freehold's overflow policy
 * (docs/overflow.md). Ollama cuts silently by default; freehold does not, so only a request that sets one of them
 * chooses a policy, and an answer that was cut says so.
 *
 * - `truncate: true`: Ollama drops the oldest messages, keeping the system messages and the last one → `truncate-middle`.
 * - `truncate: false`: the prompt must fit → `error`, whatever `shift` says (Ollama's shift acts during generation,
 *   after the prompt is in; freehold reserves the room to answer instead).
 * - otherwise `shift: true`: keep the most recent tokens → `shift`; `shift: false` → `error`.
 * - neither: the model's profile decides (default `error`).
 */
export function ollamaOverflow(body: { truncate?: boolean | undefined; shift?: boolean | undefined }): {
  overflow?: OverflowPolicy;
} {
  if (body.truncate !== undefined) return { overflow: body.truncate ? "truncate-middle" : "error" };
  if (body.shift !== undefined) return { overflow: body.shift ? "shift" : "error" };
  return {};
}
