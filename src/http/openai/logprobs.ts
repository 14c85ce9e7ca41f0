import type { TokenAlternative, TokenLogprob } from "../../core/chat.js";

function alternative(entry: TokenAlternative) {
  return { token: entry.token, logprob: entry.logprob, bytes: entry.bytes };
}

/** Chat Completions' `logprobs` object for some tokens (a whole answer, or one streamed chunk). */
export function chatLogprobs(entries: TokenLogprob[] | undefined) {
  if (!entries) return null;
  return {
    content: entries.map((entry) => ({ ...alternative(entry), top_logprobs: entry.top.map(alternative) })),
    refusal: null,
  };
}

/**
 * The legacy Completions `logprobs` object. `offset` is where these tokens' text starts, counted in characters
 * from the start of the completion text.
 */
export function completionLogprobs(entries: TokenLogprob[] | undefined, offset: number) {
  if (!entries) return null;
  const textOffset: number[] = [];
  let at = offset;
  for (const entry of entries) {
    textOffset.push(at);
    at += entry.token.length;
  }
  return {
    tokens: entries.map((entry) => entry.token),
    token_logprobs: entries.map((entry) => entry.logprob),
    top_logprobs: entries.map((entry) => Object.fromEntries(entry.top.map((top) => [top.token, top.logprob]))),
    text_offset: textOffset,
  };
}
