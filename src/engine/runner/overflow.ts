/**
 * The overflow stage: a prompt longer than the context is refused (the default), or cut by the request's policy,
 * and the cut is reported. "truncate-middle" (chat) drops the oldest turns, keeping system messages and the last
 * turn; "shift" keeps the prompt's end (and its BOS), as llama.cpp's context shift keeps the most recent tokens.
 * Completions have no turns: both policies shift them.
 */
import type { Token } from "node-llama-cpp";
import type { GenerateRequest, Truncation } from "../../core/chat.js";
import { requestError } from "./errors.js";
import type { Prompt } from "./prompt.js";

/**
 * Room a cut prompt leaves to answer: the request's max_tokens, at most half the context (a cut prompt that leaves
 * one token to answer helps nobody), 256 tokens when it sets none.
 */
export function answerRoom(contextSize: number, maxTokens: number | undefined): number {
  return Math.max(1, Math.min(maxTokens ?? 256, Math.floor(contextSize / 2)));
}

function tooLong(tokens: number, contextSize: number, detail = ""): Error {
  return requestError(
    `this model's context is ${contextSize} tokens; the prompt has ${tokens}${detail}. Shorten the prompt, or send ` +
      `truncation: "truncate-middle" or "shift" to have it cut (Ollama's API: truncate: true or shift: true).`,
    "context_length_exceeded",
    400,
    "messages",
  );
}

/**
 * The prompt as it fits the context. `render` turns a request into its prompt (chat template applied); `bos`, the
 * token a shifted prompt keeps at its start.
 */
export function fitPrompt(
  request: GenerateRequest,
  contextSize: number,
  render: (request: GenerateRequest) => Prompt,
  bos: number | null,
): { request: GenerateRequest; prompt: Prompt; truncation?: Truncation } {
  const prompt = render(request);
  const total = prompt.tokens.length;
  if (total < contextSize) return { request, prompt };
  const policy = request.overflow ?? "error";
  if (policy === "error") throw tooLong(total, contextSize);
  const limit = contextSize - answerRoom(contextSize, request.limits.maxTokens);
  const report = (kept: number, droppedMessages: number): Truncation => ({
    policy,
    promptTokens: total,
    contextSize,
    keptTokens: kept,
    droppedTokens: total - kept,
    droppedMessages,
  });
  if (policy === "truncate-middle" && request.kind === "chat") {
    let messages = request.messages;
    let dropped = 0;
    for (;;) {
      // The oldest message that is neither a system message nor the last one.
      const index = messages.findIndex((message, i) => message.role !== "system" && i < messages.length - 1);
      if (index === -1) throw tooLong(total, contextSize, " even with only its system messages and last turn");
      messages = messages.filter((_, i) => i !== index);
      dropped++;
      const cut = { ...request, messages };
      const fitted = render(cut);
      if (fitted.tokens.length <= limit)
        return { request: cut, prompt: fitted, truncation: report(fitted.tokens.length, dropped) };
    }
  }
  const start = bos !== null && prompt.tokens[0] === bos ? 1 : 0;
  const keep = limit - start;
  const tokens = [...prompt.tokens.slice(0, start), ...prompt.tokens.slice(total - keep)] as Token[];
  return { request, prompt: { ...prompt, tokens }, truncation: report(tokens.length, 0) };
}
