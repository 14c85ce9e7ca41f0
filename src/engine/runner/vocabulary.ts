/**
 * What the token-loop stages need from a model's tokenizer. node-llama-cpp's LlamaModel has this shape; tests give
 * a fake one, so each stage is tested on made-up token streams without a model.
 */
export interface Vocabulary {
  /** `before`: the tokens that precede these ones (how a token reads can depend on them, a leading space say). */
  detokenize(tokens: readonly number[], specialTokens: boolean, before: readonly number[]): string;
  isEogToken(token: number): boolean;
}
