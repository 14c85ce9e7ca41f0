/**
 * The llama-server engine: a RunnerModel that hosts its model in llama.cpp's own server, started as a child of this
 * runner. Everything above the runner (queue, residency, crash isolation, metrics, ledger, every API) is unchanged:
 * this file only turns the runner protocol's requests into llama-server's native `/completion`, `/tokenize`,
 * `/apply-template` and `/v1/embeddings` calls.
 *
 * Isolation: llama-server listens on a Unix socket inside a fresh 0700 directory (llama-server binds a Unix socket
 * when its --host ends in .sock), not on a TCP port. A loopback port is reachable by every local user and process;
 * the socket only by this user, and each request also carries a random key (--api-key-file, 0600 in that directory).
 * If llama-server dies, the runner exits, so the server sees an ordinary runner crash (runner_crashed, restart).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {
  ChatEvent,
  ChatMessage,
  ChatRequest,
  FinishReason,
  ResponseFormat,
  TokenLogprob,
} from "../../core/chat.js";
import { JsonEndTracker } from "../../core/jsonEnd.js";
import { forcesToolCall, messagesWithTools, parseToolCalls, toolCallSchema } from "../../core/tools.js";
import { LlamaServerClient, LlamaServerHttpError } from "./llamaServerClient.js";
import type { LoadedInfo, LoadOptions, RunnerRequest } from "./protocol.js";
import type { RunnerModel } from "./runnerModel.js";
import { logitBiases } from "./sampling.js";

type GenerateMessage = RunnerRequest;

/** A chat request's chat-only fields (tools, messages), or none for a completion. */
function chatOf(request: RunnerRequest): Partial<ChatRequest> {
  return request.kind === "chat" ? request : {};
}

function requestError(message: string, code: string, status: number, param: string | null = null): Error {
  return Object.assign(new Error(message), { code, status, param, retryable: false });
}

/** The ChatML fallback's end marker, plain text in models that have no such token. */
const FALLBACK_STOP = "<|im_end|>";

interface ServerProcess {
  child: ChildProcess;
  client: LlamaServerClient;
  directory: string;
  /** The last of what llama-server wrote to stderr (why a load failed, what it said before dying). */
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts llama-server on a private socket and waits until it answers /health (or dies, with its reason). */
async function startServer(binary: string, args: string[], timeoutMs = 600_000): Promise<ServerProcess> {
  const directory = mkdtempSync(join(tmpdir(), "freehold-llama-"));
  const socket = join(directory, "server.sock");
  const apiKey = randomBytes(24).toString("hex");
  writeFileSync(join(directory, "key"), apiKey, { mode: 0o600 });
  const child = spawn(
    binary,
    [...args, "--host", socket, "--api-key-file", join(directory, "key"), "--no-webui", "--log-verbosity", "2"],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let tail = "";
  child.stderr?.setEncoding("utf8");
  child.stderr?.on("data", (chunk: string) => {
    tail = (tail + chunk).slice(-8000);
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on("exit", (code, signal) => resolve({ code, signal }));
    child.on("error", (error) => {
      tail += `\n${error.message}`;
      resolve({ code: -1, signal: null });
    });
  });
  const client = new LlamaServerClient(socket, apiKey);
  const server: ServerProcess = { child, client, directory, stderr: () => tail, exited };
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  for (;;) {
    if (gone) {
      rmSync(directory, { recursive: true, force: true });
      const { code, signal } = await exited;
      const lines = tail
        .split("\n")
        .filter((line) => /error|fail|unknown|invalid|unsupported|missing/i.test(line))
        .slice(-4)
        .map((line) => line.trim());
      throw requestError(
        `llama-server could not load the model (${signal ? `signal ${signal}` : `exit code ${code}`}): ${lines.join("; ") || tail.trim().split("\n").slice(-3).join("; ")}`,
        "model_load_failed",
        500,
      );
    }
    try {
      await client.json("GET", "/health");
      return server;
    } catch {
      // Not listening yet, or 503 while loading.
    }
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      rmSync(directory, { recursive: true, force: true });
      throw requestError("llama-server did not become ready in time", "model_load_failed", 500);
    }
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

interface Props {
  default_generation_settings: { n_ctx: number };
  total_slots: number;
  chat_template?: string;
  modalities?: { vision?: boolean; audio?: boolean };
  media_marker?: string;
  eos_token?: string;
}

interface ModelsAnswer {
  data: { meta?: { n_vocab?: number; n_ctx_train?: number; n_embd?: number } }[];
}

interface ProbabilityEntry {
  id: number;
  token: string;
  bytes: number[];
  logprob?: number;
  prob?: number;
  top_logprobs?: ProbabilityEntry[];
  top_probs?: ProbabilityEntry[];
}

interface CompletionChunk {
  content: string;
  tokens?: number[];
  stop: boolean;
  tokens_predicted?: number;
  tokens_evaluated?: number;
  stop_type?: "none" | "eos" | "limit" | "word";
  stopping_word?: string;
  timings?: { cache_n?: number; prompt_n?: number; prompt_ms?: number; predicted_ms?: number };
  completion_probabilities?: ProbabilityEntry[];
}

function logOf(entry: ProbabilityEntry): number {
  if (entry.logprob !== undefined) return Math.max(entry.logprob, -9999);
  return entry.prob !== undefined && entry.prob > 0 ? Math.max(Math.log(entry.prob), -9999) : -9999;
}

function toLogprob(entry: ProbabilityEntry, alternatives: number): TokenLogprob {
  const top = (entry.top_logprobs ?? entry.top_probs ?? []).slice(0, alternatives).map((candidate) => ({
    token: candidate.token,
    bytes: candidate.bytes,
    logprob: logOf(candidate),
  }));
  return { token: entry.token, bytes: entry.bytes, logprob: logOf(entry), top };
}

function gpuLayersArgument(layers: LoadOptions["gpuLayers"]): string {
  return layers === "max" ? "all" : String(layers);
}

/** Starts llama-server for a model and answers the runner protocol through it. */
export async function loadLlamaServerModel(options: LoadOptions): Promise<RunnerModel> {
  const started = performance.now();
  const binary = options.llamaServer;
  if (!binary) throw requestError("no llama-server binary was given to this runner", "model_load_failed", 500);
  if (options.paths.length !== 1)
    throw requestError(
      "split models (several GGUF files) are not supported on the llama-server engine yet; use node-llama-cpp",
      "model_load_failed",
      500,
    );
  const directoryForTemplate = options.chatTemplate ? mkdtempSync(join(tmpdir(), "freehold-template-")) : undefined;
  const templateArgs: string[] = [];
  if (options.chatTemplate && directoryForTemplate) {
    const file = join(directoryForTemplate, "template.jinja");
    writeFileSync(file, options.chatTemplate, { mode: 0o600 });
    templateArgs.push("--chat-template-file", file);
  }
  // Each slot gets the context size a node-llama-cpp sequence has (the engine's estimate counts it that way).
  const common = [
    "-m",
    options.paths[0]!,
    "-t",
    String(options.threads),
    "-tb",
    String(options.threads),
    // The same memory and speed settings as the node-llama-cpp engine (FREEHOLD_KV_CACHE_TYPE, FREEHOLD_FLASH_ATTENTION).
    "-fa",
    options.flashAttention,
    "-ctk",
    options.kvCacheType,
    "-ctv",
    options.kvCacheType,
    "-ngl",
    gpuLayersArgument(options.gpuLayers),
  ];
  const server = await startServer(binary, [
    ...common,
    "-c",
    String(options.contextSize * options.sequences),
    "-np",
    String(options.sequences),
    "--no-kv-unified",
    "-b",
    String(options.batchSize),
    "--jinja",
    ...templateArgs,
    ...(options.projector ? ["--mmproj", options.projector] : []),
  ]).finally(() => {
    if (directoryForTemplate) rmSync(directoryForTemplate, { recursive: true, force: true });
  });
  // llama-server dying is the runner dying: the server then reports runner_crashed and restarts it.
  let disposing = false;
  void server.exited.then(({ code, signal }) => {
    if (disposing) return;
    process.stderr.write(
      `llama-server stopped unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`}):\n${server.stderr().slice(-1500)}\n`,
    );
    rmSync(server.directory, { recursive: true, force: true });
    process.exit(70);
  });
  const client = server.client;
  const props = await client.json<Props>("GET", "/props");
  const models = await client.json<ModelsAnswer>("GET", "/v1/models");
  const meta = models.data[0]?.meta ?? {};
  const contextSize = props.default_generation_settings.n_ctx;
  const vocabularySize = meta.n_vocab ?? 0;
  const marker = props.media_marker ?? "<__media__>";
  const vision = props.modalities?.vision === true;
  const info: LoadedInfo = {
    vramBytes: 0,
    contextSize,
    trainContextSize: meta.n_ctx_train ?? contextSize,
    threads: options.threads,
    busyThreads: options.threads,
    flashAttention: options.flashAttention,
    sequences: props.total_slots,
    vocabularySize,
    embeddingLength: meta.n_embd ?? 0,
    hasChatTemplate: typeof props.chat_template === "string" && props.chat_template.length > 0,
    chatFormat: "jinja",
    backend: "llama-server",
    gpuLayers: 0,
    loadMs: Math.round(performance.now() - started),
    engine: "llama-server",
    vision,
    childPids: server.child.pid !== undefined ? [server.child.pid] : [],
  };

  async function tokenize(text: string): Promise<number[]> {
    const answer = await client.json<{ tokens: number[] }>("POST", "/tokenize", {
      content: text,
      add_special: true,
      parse_special: true,
    });
    return answer.tokens;
  }

  /** The prompt as llama-server takes it: tokens (text only), or the text with media markers and the images. */
  async function preparePrompt(
    message: GenerateMessage,
  ): Promise<{ tokens?: number[]; text?: string; images: string[]; stops: string[] }> {
    if (message.kind === "completion") {
      if (Array.isArray(message.prompt)) return { tokens: message.prompt, images: [], stops: [] };
      return {
        tokens: await tokenize(typeof message.prompt === "string" ? message.prompt : ""),
        images: [],
        stops: [],
      };
    }
    const images: string[] = [];
    const rendered: ChatMessage[] = messagesWithTools(
      chatOf(message).messages ?? [],
      chatOf(message).tools,
      chatOf(message).toolChoice,
      chatOf(message).parallelToolCalls ?? false,
    ).map((item) => {
      if (!item.images?.length) return { role: item.role, content: item.content };
      for (const image of item.images) images.push(image.data);
      return { role: item.role, content: `${item.images.map(() => marker).join("\n")}\n${item.content}` };
    });
    let prompt: string;
    try {
      prompt = (await client.json<{ prompt: string }>("POST", "/apply-template", { messages: rendered })).prompt;
    } catch (error) {
      throw requestError(
        `the model's chat template failed to render: ${(error as Error).message.split("\n")[0]}`,
        "chat_template_error",
        400,
      );
    }
    const stops = prompt.includes("<|im_start|>") ? [FALLBACK_STOP] : [];
    if (images.length > 0) return { text: prompt, images, stops };
    return { tokens: await tokenize(prompt), images, stops };
  }

  // The end-of-sequence token's id (llama-server's /props names it as text), refused in logit_bias as node-llama-cpp does.
  const eosTokens = props.eos_token
    ? (
        await client.json<{ tokens: number[] }>("POST", "/tokenize", {
          content: props.eos_token,
          add_special: false,
          parse_special: true,
        })
      ).tokens
    : [];
  const eosToken = eosTokens.length === 1 ? eosTokens[0] : undefined;

  /**
   * OpenAI's logit_bias in llama-server's form ([id, bias] pairs; false bans), checked as the node-llama-cpp engine
   * checks it (ids in the vocabulary, -100 to 100, not the end-of-sequence token).
   */
  function logitBiasOf(bias: Record<string, number> | undefined): Record<string, unknown> {
    const pairs = logitBiases(bias, { size: vocabularySize, isEogToken: (token) => token === eosToken });
    return pairs.length === 0
      ? {}
      : { logit_bias: pairs.map(({ token, bias }) => [token, bias === "never" ? false : bias.logit]) };
  }

  function grammarFor(message: GenerateMessage): Record<string, unknown> {
    const format: ResponseFormat | undefined = forcesToolCall(chatOf(message).tools, chatOf(message).toolChoice)
      ? {
          type: "json-schema",
          schema: toolCallSchema(chatOf(message).tools ?? [], chatOf(message).toolChoice ?? "required"),
        }
      : message.responseFormat;
    if (!format || format.type === "text") return {};
    return { json_schema: format.type === "json" ? {} : format.schema };
  }

  async function countTokens(message: GenerateMessage): Promise<number> {
    const prompt = await preparePrompt(message).catch((error: unknown) =>
      error instanceof Error && "status" in error ? Promise.reject(error) : crashedOr(error),
    );
    if (prompt.tokens) return prompt.tokens.length;
    // Images: only evaluating the prompt says how many tokens they take (n_predict 0 evaluates, generates nothing).
    const answer = await client.json<CompletionChunk>("POST", "/completion", {
      prompt: { prompt_string: prompt.text, multimodal_data: prompt.images },
      n_predict: 0,
    });
    return answer.tokens_evaluated ?? 0;
  }

  async function generate(
    message: GenerateMessage,
    signal: AbortSignal,
    emit: (event: ChatEvent) => void,
  ): Promise<void> {
    const started = performance.now();
    const prompt = await preparePrompt(message).catch((error: unknown) =>
      error instanceof Error && "status" in error ? Promise.reject(error) : crashedOr(error),
    );
    if (prompt.tokens) {
      for (const token of prompt.tokens) {
        if (!Number.isInteger(token) || token < 0 || token >= vocabularySize)
          throw requestError(`token id ${token} is out of range`, "invalid_token", 400, "prompt");
      }
      if (prompt.tokens.length >= contextSize)
        throw requestError(
          `this model's context is ${contextSize} tokens; the prompt has ${prompt.tokens.length}. Shorten the prompt.`,
          "context_length_exceeded",
          400,
          "messages",
        );
    }
    const promptLength = prompt.tokens?.length ?? 0;
    const room = contextSize - promptLength;
    const maxTokens = Math.min(message.limits.maxTokens ?? room, room);
    if (maxTokens <= 0) {
      emit({ type: "usage", usage: { promptTokens: promptLength, completionTokens: 0 } });
      emit({ type: "finish", reason: "length" });
      return;
    }
    const sampling = message.sampling;
    const stops = [...(message.limits.stop ?? []), ...prompt.stops];
    const temperature = sampling.temperature ?? 0.8;
    const grammar = grammarFor(message);
    const body: Record<string, unknown> = {
      prompt: prompt.tokens ?? { prompt_string: prompt.text, multimodal_data: prompt.images },
      stream: true,
      n_predict: maxTokens,
      temperature,
      // node-llama-cpp's defaults where a request says nothing (llama-server's own differ: top_k 40, min_p 0.05...).
      top_k: sampling.topK ?? 40,
      top_p: sampling.topP ?? 0.95,
      min_p: sampling.minP ?? 0.05,
      repeat_penalty: sampling.repeatPenalty ?? 1,
      repeat_last_n: sampling.repeatLastN ?? 64,
      presence_penalty: sampling.presencePenalty ?? 0,
      frequency_penalty: sampling.frequencyPenalty ?? 0,
      ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
      ...(stops.length > 0 ? { stop: stops } : {}),
      ...(message.limits.ignoreEos ? { ignore_eos: true } : {}),
      ...(message.logprobs !== undefined
        ? { n_probs: Math.max(1, message.logprobs), post_sampling_probs: temperature > 0 }
        : {}),
      ...grammar,
      ...logitBiasOf(sampling.logitBias),
      cache_prompt: true,
    };
    const toolsOffered =
      message.kind === "chat" && (chatOf(message).tools?.length ?? 0) > 0 && chatOf(message).toolChoice !== "none";
    let toolMode: "undecided" | "tool" | "text" = forcesToolCall(chatOf(message).tools, chatOf(message).toolChoice)
      ? "tool"
      : toolsOffered
        ? "undecided"
        : "text";
    let toolBuffer = "";
    let jsonTracker = grammar.json_schema !== undefined || toolMode === "tool" ? new JsonEndTracker() : undefined;
    let reason: FinishReason = "length";
    let stopSequence: string | undefined;
    let completionTokens = 0;
    let promptTokens = promptLength;
    let cachedTokens = 0;
    let firstTokenAt = 0;
    let promptMs: number | undefined;
    const pendingLogprobs: TokenLogprob[] = [];
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    const send = (text: string) => {
      const entries = pendingLogprobs.splice(0);
      if (text || entries.length)
        emit(entries.length ? { type: "text-delta", text, logprobs: entries } : { type: "text-delta", text });
    };
    try {
      if (signal.aborted) {
        reason = "cancelled";
        return;
      }
      let stream: AsyncGenerator<CompletionChunk>;
      try {
        stream = client.events<CompletionChunk>("/completion", body, controller.signal);
        for await (const chunk of stream) {
          if (signal.aborted) {
            reason = "cancelled";
            break;
          }
          if (chunk.tokens_evaluated !== undefined) promptTokens = chunk.tokens_evaluated;
          if (chunk.stop) {
            completionTokens = chunk.tokens_predicted ?? completionTokens;
            cachedTokens = chunk.timings?.cache_n ?? 0;
            promptMs = chunk.timings?.prompt_ms;
            if (chunk.stop_type === "eos") reason = "stop";
            else if (chunk.stop_type === "word") {
              reason = "stop";
              if (chunk.stopping_word && message.limits.stop?.includes(chunk.stopping_word))
                stopSequence = chunk.stopping_word;
            } else reason = "length";
            if (chunk.content) {
              // The last piece (rare): pass it through the same path below.
            } else break;
          }
          const tokensInChunk = chunk.tokens?.length ?? (chunk.content ? 1 : 0);
          if (!chunk.stop) completionTokens += tokensInChunk;
          if (completionTokens > 0 && firstTokenAt === 0) firstTokenAt = performance.now();
          if (message.logprobs !== undefined && chunk.completion_probabilities && toolMode !== "tool")
            for (const entry of chunk.completion_probabilities)
              pendingLogprobs.push(toLogprob(entry, message.logprobs));
          let text = chunk.content;
          if (toolMode === "undecided") {
            toolBuffer += text;
            const start = toolBuffer.trimStart();
            if (start.length === 0) continue;
            toolMode =
              start.startsWith("{") || (chatOf(message).parallelToolCalls && start.startsWith("[")) ? "tool" : "text";
            text = toolBuffer;
            toolBuffer = "";
            if (toolMode === "tool") {
              jsonTracker ??= new JsonEndTracker();
              pendingLogprobs.length = 0;
            }
          }
          const jsonEnd = jsonTracker?.push(text) ?? -1;
          if (jsonEnd >= 0) text = text.slice(0, jsonEnd);
          if (toolMode === "tool") {
            toolBuffer += text;
            if (jsonEnd >= 0) {
              reason = "stop";
              break;
            }
            continue;
          }
          // llama-server applies the stop strings itself, holding back partial matches.
          send(text);
          if (jsonEnd >= 0) {
            reason = "stop";
            break;
          }
          if (chunk.stop) break;
        }
      } catch (error) {
        if (signal.aborted) {
          reason = "cancelled";
        } else if (error instanceof LlamaServerHttpError) {
          throw translateError(error);
        } else {
          await crashedOr(error);
        }
      }
      if (toolBuffer && reason !== "cancelled") {
        const calls = parseToolCalls(
          toolBuffer,
          chatOf(message).tools ?? [],
          chatOf(message).parallelToolCalls ?? false,
        );
        if (calls) {
          for (const call of calls)
            emit({ type: "tool-call", call: { id: `call_${randomBytes(12).toString("hex")}`, ...call } });
          reason = "tool-calls";
        } else {
          emit({ type: "text-delta", text: toolBuffer });
        }
      } else if (pendingLogprobs.length > 0) {
        send("");
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      controller.abort();
    }
    const now = performance.now();
    const firstAt = firstTokenAt || now;
    emit({
      type: "usage",
      usage: { promptTokens, completionTokens, cachedTokens },
      timing: {
        timeToFirstTokenMs: firstAt - started,
        promptMs: promptMs ?? firstAt - started,
        generationMs: now - firstAt,
      },
    });
    emit(stopSequence !== undefined ? { type: "finish", reason, stopSequence } : { type: "finish", reason });
  }

  /**
   * A connection error usually means llama-server died: then the runner is going down (see the exit handler above),
   * and the server reports runner_crashed to every request. Wait for that rather than report the socket error.
   */
  async function crashedOr(error: unknown): Promise<never> {
    const exited = await Promise.race([
      server.exited.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 2000)),
    ]);
    if (exited) await new Promise<never>(() => {});
    throw Object.assign(new Error(`llama-server: ${(error as Error).message}`), { code: "runner_error", status: 500 });
  }

  /** llama-server's request errors, in the runner protocol's terms. */
  function translateError(error: LlamaServerHttpError): Error {
    const text = error.message;
    if (/json.?schema|grammar/i.test(text))
      return requestError(
        `the JSON schema cannot be turned into a grammar: ${text}`,
        "invalid_schema",
        400,
        "response_format",
      );
    if (/exceed|context size|too long/i.test(text))
      return requestError(
        `the prompt does not fit this model's context: ${text}`,
        "context_length_exceeded",
        400,
        "messages",
      );
    if (/image|media|bitmap|decode/i.test(text))
      return requestError(`an image could not be read: ${text}`, "invalid_image", 400, "messages");
    if (error.status >= 400 && error.status < 500) return requestError(text, "invalid_request", 400);
    return Object.assign(new Error(`llama-server: ${text}`), { code: "runner_error", status: 500 });
  }

  // Embeddings need llama-server in embeddings mode (a second process on the same file, started on first use).
  let embedder: Promise<ServerProcess> | undefined;
  const embeddingContextSize = Math.min(contextSize, 2048);
  async function embed(input: string[]): Promise<{ vectors: number[][]; promptTokens: number }> {
    embedder ??= startServer(binary!, [
      ...common,
      "-c",
      String(embeddingContextSize),
      "-np",
      "1",
      "-b",
      String(embeddingContextSize),
      "-ub",
      String(embeddingContextSize),
      "--embeddings",
      "--pooling",
      "mean",
    ]).then((started) => {
      if (started.child.pid !== undefined) info.childPids.push(started.child.pid);
      void started.exited.then(({ code, signal }) => {
        if (disposing) return;
        process.stderr.write(`llama-server (embeddings) stopped unexpectedly (${signal ?? `exit code ${code}`})\n`);
        process.exit(70);
      });
      return started;
    });
    const embedding = await embedder;
    const vectors: number[][] = [];
    let promptTokens = 0;
    for (const text of input) {
      const tokens = await tokenize(text);
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
  }

  return {
    info,
    countTokens,
    generate,
    embed,
    // Reranking needs llama-server started in its reranking mode with a ranking model; not wired yet.
    async rank() {
      throw requestError(
        "reranking runs on the node-llama-cpp engine: set engine: node-llama-cpp in this model's profile (or FREEHOLD_ENGINE)",
        "model_cannot_rank",
        400,
        "model",
      );
    },
    async dispose() {
      disposing = true;
      const servers = [server, ...(embedder ? [await embedder.catch(() => undefined)] : [])];
      for (const running of servers) {
        if (!running) continue;
        running.child.kill("SIGTERM");
        const timer = setTimeout(() => running.child.kill("SIGKILL"), 2000);
        await running.exited;
        clearTimeout(timer);
        rmSync(running.directory, { recursive: true, force: true });
      }
    },
  };
}
