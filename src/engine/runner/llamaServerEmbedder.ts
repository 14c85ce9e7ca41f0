/**
 * Embeddings on the llama-server engine: llama-server answers /v1/embeddings only in embeddings mode, so a second
 * llama-server on the same file (--embeddings --pooling mean, one slot) is started on first use and kept with the
 * model. Vectors are normalised as the node-llama-cpp engine's are.
 */
import { requestError } from "./errors.js";
import { type ServerProcess, startCompanionServer } from "./llamaServerProcess.js";

export interface Embedder {
  embed(input: string[]): Promise<{ vectors: number[][]; promptTokens: number }>;
  /** The embeddings server, if one was started (to stop it with the model). */
  running(): Promise<ServerProcess | undefined> | undefined;
}

export function createEmbedder(options: {
  binary: string;
  /** The model, thread and memory arguments both servers share. */
  common: string[];
  contextSize: number;
  /** The generation server's tokenizer (the same vocabulary), to refuse over-long inputs before sending them. */
  tokenize: (text: string) => Promise<number[]>;
  /** Its pid, for the server to kill if the runner is killed outright. */
  onStarted: (pid: number) => void;
  disposing: () => boolean;
}): Embedder {
  let embedder: Promise<ServerProcess> | undefined;
  const embeddingContextSize = Math.min(options.contextSize, 2048);
  return {
    running: () => embedder?.catch(() => undefined),
    async embed(input) {
      embedder ??= startCompanionServer({
        ...options,
        contextSize: embeddingContextSize,
        mode: ["--embeddings", "--pooling", "mean"],
        role: "embeddings",
      });
      const embedding = await embedder;
      const vectors: number[][] = [];
      let promptTokens = 0;
      for (const text of input) {
        const tokens = await options.tokenize(text);
        if (tokens.length + 1 > embeddingContextSize)
          throw requestError(
            `an input has ${tokens.length} tokens, more than the embedding context holds`,
            "context_length_exceeded",
            400,
            "input",
          );
        const answer = await embedding.client.json<{
          data: { embedding: number[] }[];
          usage?: { prompt_tokens: number };
        }>("POST", "/v1/embeddings", { input: text, encoding_format: "float" });
        const vector = answer.data[0]?.embedding ?? [];
        const norm = Math.sqrt(vector.reduce((sum, v) => sum + v * v, 0)) || 1;
        vectors.push(vector.map((v) => v / norm));
        promptTokens += answer.usage?.prompt_tokens ?? tokens.length;
      }
      return { vectors, promptTokens };
    },
  };
}
