import type { ChatEvent, EmbeddingRequest, EmbeddingResult, GenerateRequest, ModelInfo } from "../core/chat.js";
import type { JsonPathPattern, PreparedCall } from "../core/egress.js";
import { InvalidRequestError } from "../core/errors.js";
import { openAIAnswerEvents, openAIEvents, openAIRequestBody } from "./openaiWire.js";
import type { Provider } from "./provider.js";
import { bearerUpstream, droppedStream, type Upstream } from "./upstream.js";

/** OpenAI's Chat Completions API, spoken by OpenAI, vLLM, llama.cpp's server, LM Studio and another freehold. */

export interface OpenAICompatibleOptions {
  name: string;
  /** Including the version prefix, as clients use it: `https://api.openai.com/v1`, `http://node-b:11435/v1`. */
  baseUrl: string;
  apiKey?: string;
  headers?: Record<string, string>;
  /** Longest silence between two chunks of an answer (upstream.ts DEFAULT_IDLE_TIMEOUT_MS when unset). */
  idleTimeoutMs?: number;
}

/**
 * The parts of an OpenAI body that are the protocol, not content: the configured model, roles and type tags.
 * Everything else is scanned; tool call ids (`identifiers`) without the high-entropy rule, as they are random.
 */
const structural: readonly JsonPathPattern[] = [
  ["model"],
  ["messages", "*", "role"],
  ["messages", "*", "tool_calls", "*", "type"],
  ["messages", "*", "content", "*", "type"],
  ["tools", "*", "type"],
  ["tool_choice"],
  ["tool_choice", "type"],
  ["response_format", "type"],
];
const identifiers: readonly JsonPathPattern[] = [
  ["messages", "*", "tool_call_id"],
  ["messages", "*", "tool_calls", "*", "id"],
];

export class OpenAICompatibleProvider implements Provider {
  readonly kind = "openai";
  readonly name: string;
  private readonly upstream: Upstream;

  constructor(options: OpenAICompatibleOptions) {
    this.name = options.name;
    this.upstream = bearerUpstream(options);
  }

  get origin(): string {
    return this.upstream.origin;
  }

  prepareGenerate(request: GenerateRequest): PreparedCall<AsyncIterable<ChatEvent>> {
    const path = request.kind === "completion" ? "completions" : "chat/completions";
    return {
      outgoing: {
        operation: "generate",
        path,
        body: openAIRequestBody(request, request.model),
        structural,
        identifiers,
      },
      send: (body, signal) => this.generate(path, body, request.wholeAnswer === true, signal),
    };
  }

  private async *generate(
    path: string,
    body: Record<string, unknown>,
    wholeAnswer: boolean,
    signal?: AbortSignal,
  ): AsyncGenerator<ChatEvent> {
    const response = await this.upstream.request("POST", path, body, signal);
    if (!wholeAnswer) {
      yield* openAIEvents(this.name, response.body);
      return;
    }
    let text: string;
    try {
      text = await response.text();
    } catch (error) {
      throw droppedStream(this.name, error);
    }
    yield* openAIAnswerEvents(this.name, text);
  }

  prepareEmbed(request: EmbeddingRequest): PreparedCall<Promise<EmbeddingResult>> {
    return {
      outgoing: {
        operation: "embed",
        path: "embeddings",
        body: { model: request.model, input: request.input },
        structural: [["model"]],
      },
      send: async (sent, signal) => {
        const body = await this.upstream.json<{
          data: { embedding: number[]; index: number }[];
          usage?: { prompt_tokens?: number };
        }>("POST", "embeddings", sent, signal);
        const vectors = [...body.data].sort((a, b) => a.index - b.index).map((item) => item.embedding);
        return { vectors, promptTokens: body.usage?.prompt_tokens ?? 0 };
      },
    };
  }

  async listModels(): Promise<ModelInfo[]> {
    const body = await this.upstream.json<{ data?: { id: string; created?: number; owned_by?: string }[] }>(
      "GET",
      "models",
    );
    return (body.data ?? []).map((model) => ({
      name: model.id,
      created: model.created ?? 0,
      ownedBy: model.owned_by ?? this.name,
      contextLength: null,
    }));
  }

  /** OpenAI's API has no counting endpoint: nothing is prepared to leave, the call just fails. */
  prepareCountTokens(): PreparedCall<Promise<number>> {
    const error = new InvalidRequestError(
      `provider ${this.name} (OpenAI-compatible) cannot count tokens`,
      "model",
      "unsupported",
    );
    return { outgoing: null, run: () => Promise.reject(error) };
  }

  async health(signal?: AbortSignal): Promise<void> {
    await this.upstream.json("GET", "models", undefined, signal);
  }
}
