import type {
  ChatEvent,
  EmbeddingRequest,
  EmbeddingResult,
  FinishReason,
  GenerateRequest,
  ModelInfo,
} from "../core/chat.js";
import type { JsonPathPattern, PreparedCall } from "../core/egress.js";
import { InvalidRequestError } from "../core/errors.js";
import { errorEvent, upstreamLogprobs, type WireAlternative } from "./openaiWire.js";
import type { Provider } from "./provider.js";
import { bearerUpstream, droppedStream, lines, type Upstream } from "./upstream.js";

/** Ollama's native API (/api/chat, NDJSON stream), for an Ollama the owner already runs. */

export interface OllamaOptions {
  name: string;
  /** `http://127.0.0.1:11434` */
  baseUrl: string;
  apiKey?: string;
  headers?: Record<string, string>;
  /** Longest silence between two chunks of an answer (upstream.ts DEFAULT_IDLE_TIMEOUT_MS when unset). */
  idleTimeoutMs?: number;
}

function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text || "{}");
  } catch {
    return {};
  }
}

export function ollamaRequestBody(request: GenerateRequest, model: string): Record<string, unknown> {
  const { sampling, limits } = request;
  const options = {
    ...(sampling.temperature !== undefined ? { temperature: sampling.temperature } : {}),
    ...(sampling.topP !== undefined ? { top_p: sampling.topP } : {}),
    ...(sampling.topK !== undefined ? { top_k: sampling.topK } : {}),
    ...(sampling.minP !== undefined ? { min_p: sampling.minP } : {}),
    ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
    ...(sampling.repeatPenalty !== undefined ? { repeat_penalty: sampling.repeatPenalty } : {}),
    ...(limits.maxTokens !== undefined ? { num_predict: limits.maxTokens } : {}),
    ...(limits.stop?.length ? { stop: limits.stop } : {}),
  };
  const format = request.responseFormat;
  const body: Record<string, unknown> = {
    model,
    stream: true,
    options,
    ...(format?.type === "json" ? { format: "json" } : format?.type === "json-schema" ? { format: format.schema } : {}),
    ...(request.logprobs !== undefined ? { logprobs: true, top_logprobs: request.logprobs } : {}),
  };
  if (request.kind === "completion") return { ...body, prompt: request.prompt, raw: true };
  body.messages = request.messages.map((message) => ({
    role: message.role,
    content: message.content,
    ...(message.images?.length ? { images: message.images.map((image) => image.data) } : {}),
    ...(message.toolCalls?.length
      ? {
          tool_calls: message.toolCalls.map((call) => ({
            function: { name: call.name, arguments: parseArguments(call.arguments) },
          })),
        }
      : {}),
  }));
  if (request.tools?.length && request.toolChoice !== "none")
    body.tools = request.tools.map((tool) => ({
      type: "function",
      function: { name: tool.name, description: tool.description ?? "", parameters: tool.parameters },
    }));
  return body;
}

interface OllamaLine {
  logprobs?: { token?: string; logprob?: number; bytes?: number[] | null; top_logprobs?: WireAlternative[] }[] | null;
  message?: { content?: string; tool_calls?: { function?: { name?: string; arguments?: unknown } }[] };
  response?: string;
  done?: boolean;
  done_reason?: string;
  prompt_eval_count?: number;
  eval_count?: number;
  error?: string;
}

/** The parts of an Ollama body that are the protocol, not content (see openaiCompatible.ts). */
const structural: readonly JsonPathPattern[] = [["model"], ["messages", "*", "role"], ["tools", "*", "type"]];

// biome-ignore lint/correctness/useYield: fails on first use, as the generator it stands in for would.
async function* failing(error: Error): AsyncGenerator<ChatEvent> {
  throw error;
}

export class OllamaProvider implements Provider {
  readonly kind = "ollama";
  readonly name: string;
  private readonly upstream: Upstream;

  constructor(options: OllamaOptions) {
    this.name = options.name;
    this.upstream = bearerUpstream(options);
  }

  get origin(): string {
    return this.upstream.origin;
  }

  prepareGenerate(request: GenerateRequest): PreparedCall<AsyncIterable<ChatEvent>> {
    if (request.sampling.logitBias) {
      // Ollama has no logit_bias (ollama/ollama#3795): refused rather than dropped.
      const error = new InvalidRequestError(
        `provider ${this.name} (Ollama) has no logit_bias; leave it out`,
        "logit_bias",
      );
      return { outgoing: null, run: () => failing(error) };
    }
    const path = request.kind === "completion" ? "api/generate" : "api/chat";
    return {
      outgoing: { operation: "generate", path, body: ollamaRequestBody(request, request.model), structural },
      send: (body, signal) => this.generate(path, body, signal),
    };
  }

  private async *generate(
    path: string,
    body: Record<string, unknown>,
    signal?: AbortSignal,
  ): AsyncGenerator<ChatEvent> {
    const response = await this.upstream.request("POST", path, body, signal);
    let calls = 0;
    try {
      for await (const line of lines(response.body, this.name)) {
        if (!line.trim()) continue;
        const item = JSON.parse(line) as OllamaLine;
        if (item.error) {
          yield errorEvent({
            message: `provider ${this.name}: ${item.error}`,
            code: "upstream_error",
            status: 502,
            retryable: true,
          });
          return;
        }
        const text = item.message?.content ?? item.response;
        // Ollama's logprobs entries have the chat form (token, logprob, bytes, top_logprobs).
        const logprobs = upstreamLogprobs(item.logprobs ? { content: item.logprobs } : null);
        if (text || logprobs?.length)
          yield logprobs?.length
            ? { type: "text-delta", text: text ?? "", logprobs }
            : { type: "text-delta", text: text ?? "" };
        for (const call of item.message?.tool_calls ?? []) {
          const args = call.function?.arguments;
          yield {
            type: "tool-call",
            call: {
              id: `call_${calls++}`,
              name: call.function?.name ?? "",
              arguments: typeof args === "string" ? args : JSON.stringify(args ?? {}),
            },
          };
        }
        if (item.done) {
          yield {
            type: "usage",
            usage: { promptTokens: item.prompt_eval_count ?? 0, completionTokens: item.eval_count ?? 0 },
          };
          const reason: FinishReason = calls > 0 ? "tool-calls" : item.done_reason === "length" ? "length" : "stop";
          yield { type: "finish", reason };
          return;
        }
      }
    } catch (error) {
      yield errorEvent(droppedStream(this.name, error));
      return;
    }
    yield errorEvent(droppedStream(this.name, new Error("ended before done")));
  }

  prepareEmbed(request: EmbeddingRequest): PreparedCall<Promise<EmbeddingResult>> {
    return {
      outgoing: {
        operation: "embed",
        path: "api/embed",
        body: { model: request.model, input: request.input },
        structural: [["model"]],
      },
      send: async (sent, signal) => {
        const body = await this.upstream.json<{ embeddings: number[][]; prompt_eval_count?: number }>(
          "POST",
          "api/embed",
          sent,
          signal,
        );
        return { vectors: body.embeddings, promptTokens: body.prompt_eval_count ?? 0 };
      },
    };
  }

  async listModels(): Promise<ModelInfo[]> {
    const body = await this.upstream.json<{ models?: { name: string; modified_at?: string }[] }>("GET", "api/tags");
    return (body.models ?? []).map((model) => ({
      name: model.name,
      created: model.modified_at ? Math.floor(Date.parse(model.modified_at) / 1000) : 0,
      ownedBy: this.name,
      contextLength: null,
    }));
  }

  /** Ollama's API has no counting endpoint: nothing is prepared to leave, the call just fails. */
  prepareCountTokens(): PreparedCall<Promise<number>> {
    const error = new InvalidRequestError(`provider ${this.name} (Ollama) cannot count tokens`, "model", "unsupported");
    return { outgoing: null, run: () => Promise.reject(error) };
  }

  async health(signal?: AbortSignal): Promise<void> {
    await this.upstream.json("GET", "api/version", undefined, signal);
  }
}
