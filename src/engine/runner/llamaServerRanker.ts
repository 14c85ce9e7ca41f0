/**
 * Reranking on the llama-server engine: llama-server answers /rerank only when started with --reranking (pooling
 * "rank", the model's classifier head), so a third llama-server on the same file is started on the first rerank and
 * kept with the model. A model without a ranking head does not start in that mode: that is the 400 the node-llama-cpp
 * engine gives, and it is remembered. Scores are in 0–1 as node-llama-cpp gives them: llama-server answers the head's
 * raw value, which llama.cpp's graph has already normalised for Qwen3 (soft max) and is a logit for every other
 * architecture, so those go through a sigmoid (node-llama-cpp's LlamaRankingContext makes the same distinction).
 */
import { readGgufFile } from "../../gguf/index.js";
import { cannotRankError, requestError } from "./errors.js";
import { LlamaServerHttpError } from "./llamaServerClient.js";
import { type ServerProcess, startCompanionServer } from "./llamaServerProcess.js";
import { translateError } from "./llamaServerWire.js";

export interface Ranker {
  rank(query: string, documents: string[]): Promise<{ scores: number[]; promptTokens: number }>;
  /** The ranking server, if one was started (to stop it with the model). */
  running(): Promise<ServerProcess | undefined> | undefined;
}

interface RerankAnswer {
  results: { index: number; relevance_score: number }[];
  usage?: { prompt_tokens?: number };
}

export function createRanker(options: {
  binary: string;
  /** The model, thread and memory arguments every server of the model shares. */
  common: string[];
  /** The model's (first) file, whose architecture says whether its scores come normalised. */
  modelPath: string;
  contextSize: number;
  onStarted: (pid: number) => void;
  disposing: () => boolean;
}): Ranker {
  let ranker: Promise<ServerProcess> | undefined;
  let normalised = false;
  let head: boolean | undefined;
  const rankingContextSize = Math.min(options.contextSize, 2048);
  return {
    running: () => ranker?.catch(() => undefined),
    async rank(query, documents) {
      // llama-server starts a model without a ranking head in --reranking mode and answers noise; node-llama-cpp
      // refuses such a model, and so does this (its GGUF has no cls.weight or cls.output.weight tensor).
      if (head === undefined) {
        const file = readGgufFile(options.modelPath);
        normalised = ["qwen3", "qwen3vl"].includes(String(file.metadata.get("general.architecture")?.value));
        head = file.tensors.some((tensor) => tensor.name === "cls.weight" || tensor.name === "cls.output.weight");
      }
      if (!head)
        throw requestError(
          "this model cannot rank documents (it has no ranking head): reranking needs a model with a ranking head (a cross-encoder such as bge-reranker or Qwen3-Reranker, whose GGUF has a cls.output tensor)",
          "model_cannot_rank",
          400,
          "model",
        );
      ranker ??= startCompanionServer({
        ...options,
        contextSize: rankingContextSize,
        mode: ["--reranking"],
        role: "reranking",
      });
      let server: ServerProcess;
      try {
        server = await ranker;
      } catch (error) {
        throw cannotRankError(error);
      }
      let answer: RerankAnswer;
      try {
        answer = await server.client.json<RerankAnswer>("POST", "/rerank", {
          query,
          documents,
          top_n: documents.length,
        });
      } catch (error) {
        throw error instanceof LlamaServerHttpError ? translateError(error) : error;
      }
      const scores = new Array<number>(documents.length).fill(0);
      for (const result of answer.results)
        scores[result.index] = normalised ? result.relevance_score : 1 / (1 + Math.exp(-result.relevance_score));
      return { scores, promptTokens: answer.usage?.prompt_tokens ?? 0 };
    },
  };
}
