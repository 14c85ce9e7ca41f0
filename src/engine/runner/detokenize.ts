/** The part of node-llama-cpp's LlamaModel this needs (a test can give a fake one). */
export interface Detokenizer {
  detokenize(tokens: readonly number[], specialTokens: boolean): string;
  tokenize(text: string, specialTokens: boolean): readonly number[];
}

/**
 * Detokenizes generated tokens as a continuation, never as the start of a text. llama.cpp's detokenizer drops the
 * leading space of a text's first piece (SentencePiece's space prefix); node-llama-cpp reads `before` for context but
 * falls back to that stripping when there is none, or when it reads as nothing (a lone BOS). So a completion's first
 * token " happy" came back "happy", where llama-server (which writes each piece unstripped) answers " happy".
 * Here the context always starts with an ordinary anchor piece, so the text that follows is never a text's start.
 */
export function continuationDetokenizer(
  model: Detokenizer,
): (tokens: readonly number[], specialTokens: boolean, before: readonly number[]) => string {
  // Any plain piece reads as something; "a" is in every vocabulary we load.
  const anchor = model.tokenize("a", false).slice(0, 1);
  return (tokens, specialTokens, before) => {
    if (tokens.length === 0) return "";
    // Three tokens of context are enough for the detokenizer's space rules (node-llama-cpp uses as many).
    const context = [...anchor, ...before.slice(-3)];
    if (context.length === 0) return model.detokenize(tokens, specialTokens);
    const contextText = model.detokenize(context, specialTokens);
    const text = model.detokenize([...context, ...tokens], specialTokens);
    // A detokenizer that merges across the boundary (it should not): read the tokens alone rather than guess.
    return text.startsWith(contextText) ? text.slice(contextText.length) : model.detokenize(tokens, specialTokens);
  };
}
