/** An error the runner sends back as a client's 4xx/5xx (main.ts turns it into an ErrorPayload). */
export function requestError(message: string, code: string, status: number, param: string | null = null): Error {
  return Object.assign(new Error(message), { code, status, param, retryable: false });
}

/** A model without a ranking head asked to rerank (both engines refuse it the same way). */
export function cannotRankError(cause: unknown): Error {
  return requestError(
    `this model cannot rank documents (${(cause as Error).message.replace(/\.$/, "")}): reranking needs a model with a ranking head (a cross-encoder such as bge-reranker or Qwen3-Reranker, whose GGUF has a cls.output tensor)`,
    "model_cannot_rank",
    400,
    "model",
  );
}
