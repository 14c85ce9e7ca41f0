/**
 * A loaded model's embeddings and reranking: each gets its own context on first use (the model's pooling for
 * embeddings; its classifier head for ranking, as llama.cpp's pooling "rank"), disposed with the model.
 */
import type { LlamaEmbeddingContext, LlamaModel, LlamaRankingContext } from "node-llama-cpp";
import { cannotRankError, requestError } from "./errors.js";

export interface EmbedAndRank {
  embed(input: string[]): Promise<{ vectors: number[][]; promptTokens: number }>;
  rank(query: string, documents: string[]): Promise<{ scores: number[]; promptTokens: number }>;
  dispose(): Promise<void>;
}

export function embedAndRank(model: LlamaModel, embeddingContextSize: number, threads: number): EmbedAndRank {
  let embeddingContext: Promise<LlamaEmbeddingContext> | undefined;
  // The ranking context is made on the first rerank (its own context with the model's classifier head, as llama.cpp's
  // pooling "rank"); a model without one is refused, and the refusal is remembered.
  let rankingContext: Promise<LlamaRankingContext> | undefined;
  async function rank(query: string, documents: string[]): Promise<{ scores: number[]; promptTokens: number }> {
    rankingContext ??= model.createRankingContext({
      contextSize: embeddingContextSize,
      threads,
    });
    let ranker: LlamaRankingContext;
    try {
      ranker = await rankingContext;
    } catch (error) {
      throw cannotRankError(error);
    }
    let promptTokens = 0;
    for (const [index, document] of documents.entries()) {
      const length = ranker.calculateInputLength(query, document);
      if (length > ranker.contextSize)
        throw requestError(
          `documents[${index}] with the query is ${length} tokens, more than the ranking context holds (${ranker.contextSize}); shorten it or split it`,
          "context_length_exceeded",
          400,
          `documents[${index}]`,
        );
      promptTokens += length;
    }
    const scores = await ranker.rankAll(query, documents);
    return { scores, promptTokens };
  }

  async function embed(input: string[]): Promise<{ vectors: number[][]; promptTokens: number }> {
    embeddingContext ??= model.createEmbeddingContext({
      contextSize: embeddingContextSize,
      threads,
    });
    const embedder = await embeddingContext;
    const vectors: number[][] = [];
    let promptTokens = 0;
    for (const text of input) {
      const count = model.tokenize(text, false).length;
      if (count + 2 > embeddingContextSize) {
        throw requestError(
          `an input has ${count} tokens, more than the embedding context holds`,
          "context_length_exceeded",
          400,
          "input",
        );
      }
      promptTokens += count + (model.tokens.shouldPrependBosToken ? 1 : 0);
      const embedding = await embedder.getEmbeddingFor(text);
      const vector = Array.from(embedding.vector);
      const norm = Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0)) || 1;
      vectors.push(vector.map((v) => v / norm));
    }
    return { vectors, promptTokens };
  }

  return {
    embed,
    rank,
    async dispose() {
      if (embeddingContext) await (await embeddingContext).dispose();
      if (rankingContext) await (await rankingContext.catch(() => undefined))?.dispose();
    },
  };
}
