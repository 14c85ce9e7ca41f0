import type {
  ChatEvent,
  ChatMessage,
  ChatRequest,
  EmbeddingResult,
  FinishReason,
  GenerateRequest,
  ModelInfo,
  ToolCall,
  Usage,
} from "../core/chat.js";
import type { JsonPathPattern, PreparedCall } from "../core/egress.js";
import { InvalidRequestError } from "../core/errors.js";
import { errorEvent } from "./openaiWire.js";
import type { Provider } from "./provider.js";
import { droppedStream, serverSentEvents, Upstream } from "./upstream.js";

/** Anthropic's Messages API (streamed), translated to and from the internal model, tools and usage included. */

export interface AnthropicOptions {
  name: string;
  /** Without the version prefix: `https://api.anthropic.com`. */
  baseUrl: string;
  apiKey?: string;
  /** Anthropic requires max_tokens; used when the client did not set one. */
  defaultMaxTokens?: number;
  headers?: Record<string, string>;
  /** Longest silence between two chunks of an answer (upstream.ts DEFAULT_IDLE_TIMEOUT_MS when unset). */
  idleTimeoutMs?: number;
}

const stopReasons: Record<string, FinishReason> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  tool_use: "tool-calls",
  pause_turn: "stop",
  refusal: "stop",
};

type Block = Record<string, unknown>;

function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text || "{}");
  } catch {
    return { arguments: text };
  }
}

function blocksOf(message: ChatMessage): Block[] {
  if (message.role === "tool")
    return [{ type: "tool_result", tool_use_id: message.toolCallId ?? "", content: message.content }];
  const blocks: Block[] = (message.images ?? []).map((image) => ({
    type: "image",
    source: { type: "base64", media_type: image.mediaType, data: image.data },
  }));
  if (message.content) blocks.push({ type: "text", text: message.content });
  for (const call of message.toolCalls ?? [])
    blocks.push({ type: "tool_use", id: call.id, name: call.name, input: parseArguments(call.arguments) });
  return blocks;
}

/** Messages with the system prompt lifted out, tool results as user turns, and same-role turns merged. */
function anthropicMessages(request: ChatRequest): { system: string | undefined; messages: Block[] } {
  const system = request.messages
    .filter((message) => message.role === "system")
    .map((message) => message.content)
    .join("\n\n");
  const messages: { role: string; content: Block[] }[] = [];
  for (const message of request.messages) {
    if (message.role === "system") continue;
    const role = message.role === "assistant" ? "assistant" : "user";
    const blocks = blocksOf(message);
    if (blocks.length === 0) continue;
    const last = messages.at(-1);
    if (last && last.role === role) last.content.push(...blocks);
    else messages.push({ role, content: blocks });
  }
  return { system: system || undefined, messages };
}

export function anthropicRequestBody(request: GenerateRequest, model: string, defaultMaxTokens: number): Block {
  const chat: ChatRequest =
    request.kind === "chat"
      ? request
      : {
          ...request,
          kind: "chat",
          messages: [{ role: "user", content: typeof request.prompt === "string" ? request.prompt : "" }],
        };
  const { system, messages } = anthropicMessages(chat);
  const { sampling, limits } = request;
  const body: Block = {
    model,
    stream: true,
    max_tokens: limits.maxTokens ?? defaultMaxTokens,
    messages,
    ...(system ? { system } : {}),
    ...(limits.stop?.length ? { stop_sequences: limits.stop } : {}),
    ...(sampling.temperature !== undefined ? { temperature: Math.min(1, sampling.temperature) } : {}),
    ...(sampling.topP !== undefined ? { top_p: sampling.topP } : {}),
    ...(sampling.topK !== undefined ? { top_k: sampling.topK } : {}),
  };
  if (chat.tools?.length) {
    body.tools = chat.tools.map((tool) => ({
      name: tool.name,
      ...(tool.description ? { description: tool.description } : {}),
      input_schema: { type: "object", ...tool.parameters },
    }));
    const choice = chat.toolChoice;
    const disableParallel = chat.parallelToolCalls === false ? { disable_parallel_tool_use: true } : {};
    if (choice === "required") body.tool_choice = { type: "any", ...disableParallel };
    else if (choice === "none") body.tool_choice = { type: "none" };
    else if (typeof choice === "object") body.tool_choice = { type: "tool", name: choice.name, ...disableParallel };
    else if (chat.parallelToolCalls === false) body.tool_choice = { type: "auto", ...disableParallel };
  }
  return body;
}

interface StreamFrame {
  type: string;
  message?: { usage?: { input_tokens?: number; cache_read_input_tokens?: number } };
  index?: number;
  content_block?: { type: string; id?: string; name?: string };
  delta?: { type?: string; text?: string; partial_json?: string; stop_reason?: string | null };
  usage?: { output_tokens?: number; input_tokens?: number };
  error?: { type?: string; message?: string };
}

/** Anthropic stream events → ChatEvents. */
export async function* anthropicEvents(name: string, body: AsyncIterable<Uint8Array>): AsyncGenerator<ChatEvent> {
  const calls = new Map<number, ToolCall>();
  const usage: Usage = { promptTokens: 0, completionTokens: 0 };
  let finish: FinishReason = "stop";
  let stopped = false;
  try {
    for await (const { data } of serverSentEvents(body, name)) {
      const frame = JSON.parse(data) as StreamFrame;
      switch (frame.type) {
        case "message_start":
          usage.promptTokens = frame.message?.usage?.input_tokens ?? 0;
          if (frame.message?.usage?.cache_read_input_tokens)
            usage.cachedTokens = frame.message.usage.cache_read_input_tokens;
          break;
        case "content_block_start":
          if (frame.content_block?.type === "tool_use")
            calls.set(frame.index ?? 0, {
              id: frame.content_block.id ?? "",
              name: frame.content_block.name ?? "",
              arguments: "",
            });
          break;
        case "content_block_delta":
          if (frame.delta?.type === "text_delta" && frame.delta.text)
            yield { type: "text-delta", text: frame.delta.text };
          else if (frame.delta?.type === "input_json_delta") {
            const call = calls.get(frame.index ?? 0);
            if (call) call.arguments += frame.delta.partial_json ?? "";
          }
          break;
        case "content_block_stop": {
          const call = calls.get(frame.index ?? 0);
          if (call) {
            calls.delete(frame.index ?? 0);
            yield { type: "tool-call", call: { ...call, arguments: call.arguments || "{}" } };
          }
          break;
        }
        case "message_delta":
          if (frame.delta?.stop_reason) finish = stopReasons[frame.delta.stop_reason] ?? "stop";
          if (frame.usage?.output_tokens !== undefined) usage.completionTokens = frame.usage.output_tokens;
          break;
        case "message_stop":
          stopped = true;
          break;
        case "error": {
          const overloaded = frame.error?.type === "overloaded_error";
          yield errorEvent({
            message: `provider ${name}: ${frame.error?.message ?? "stream error"}`,
            code: overloaded ? "upstream_overloaded" : "upstream_error",
            status: overloaded ? 503 : 502,
            retryable: true,
          });
          return;
        }
      }
      if (stopped) break;
    }
  } catch (error) {
    yield errorEvent(droppedStream(name, error));
    return;
  }
  if (!stopped) {
    yield errorEvent(droppedStream(name, new Error("ended before message_stop")));
    return;
  }
  yield { type: "usage", usage };
  yield { type: "finish", reason: finish };
}

/** The parts of a Messages body that are the protocol, not content (see openaiCompatible.ts). */
const structural: readonly JsonPathPattern[] = [
  ["model"],
  ["messages", "*", "role"],
  ["messages", "*", "content", "*", "type"],
  ["tools", "*", "input_schema", "type"],
  ["tool_choice", "type"],
];
const identifiers: readonly JsonPathPattern[] = [
  ["messages", "*", "content", "*", "id"],
  ["messages", "*", "content", "*", "tool_use_id"],
];

// biome-ignore lint/correctness/useYield: fails on first use, as the generator it stands in for would.
async function* failing(error: Error): AsyncGenerator<ChatEvent> {
  throw error;
}

export class AnthropicProvider implements Provider {
  readonly kind = "anthropic";
  readonly name: string;
  private readonly upstream: Upstream;
  private readonly defaultMaxTokens: number;

  constructor(options: AnthropicOptions) {
    this.name = options.name;
    this.defaultMaxTokens = options.defaultMaxTokens ?? 4096;
    this.upstream = new Upstream({
      name: options.name,
      baseUrl: options.baseUrl,
      idleTimeoutMs: options.idleTimeoutMs,
      headers: {
        "anthropic-version": "2023-06-01",
        ...(options.headers ?? {}),
        ...(options.apiKey ? { "x-api-key": options.apiKey } : {}),
      },
    });
  }

  get origin(): string {
    return this.upstream.origin;
  }

  prepareGenerate(request: GenerateRequest): PreparedCall<AsyncIterable<ChatEvent>> {
    if (request.sampling.logitBias) {
      const error = new InvalidRequestError(
        `provider ${this.name} (Anthropic's API) has no logit_bias; leave it out for this model`,
        "logit_bias",
      );
      return { outgoing: null, run: () => failing(error) };
    }
    if (request.logprobs !== undefined) {
      const error = new InvalidRequestError(
        `provider ${this.name} (Anthropic's API) has no token log probabilities; leave out logprobs for this model`,
        "logprobs",
      );
      return { outgoing: null, run: () => failing(error) };
    }
    const body = anthropicRequestBody(request, request.model, this.defaultMaxTokens);
    return {
      outgoing: { operation: "generate", path: "v1/messages", body, structural, identifiers },
      send: (sent, signal) => this.generate(sent, signal),
    };
  }

  private async *generate(body: Record<string, unknown>, signal?: AbortSignal): AsyncGenerator<ChatEvent> {
    const response = await this.upstream.request("POST", "v1/messages", body, signal);
    yield* anthropicEvents(this.name, response.body);
  }

  prepareEmbed(): PreparedCall<Promise<EmbeddingResult>> {
    const error = new InvalidRequestError(
      `provider ${this.name} (Anthropic) has no embeddings API`,
      "model",
      "unsupported",
    );
    return { outgoing: null, run: () => Promise.reject(error) };
  }

  async listModels(): Promise<ModelInfo[]> {
    const body = await this.upstream.json<{ data?: { id: string; created_at?: string }[] }>("GET", "v1/models");
    return (body.data ?? []).map((model) => ({
      name: model.id,
      created: model.created_at ? Math.floor(Date.parse(model.created_at) / 1000) : 0,
      ownedBy: this.name,
      contextLength: null,
    }));
  }

  prepareCountTokens(request: GenerateRequest): PreparedCall<Promise<number>> {
    const {
      stream: _stream,
      max_tokens: _max,
      ...body
    } = anthropicRequestBody(request, request.model, this.defaultMaxTokens);
    return {
      outgoing: { operation: "count-tokens", path: "v1/messages/count_tokens", body, structural, identifiers },
      send: async (sent, signal) => {
        const answer = await this.upstream.json<{ input_tokens: number }>(
          "POST",
          "v1/messages/count_tokens",
          sent,
          signal,
        );
        return answer.input_tokens;
      },
    };
  }

  async health(signal?: AbortSignal): Promise<void> {
    await this.upstream.json("GET", "v1/models", undefined, signal);
  }
}
