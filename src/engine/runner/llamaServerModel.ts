/**
 * The llama-server engine: a RunnerModel that hosts its model in llama.cpp's own server, started as a child of this
 * runner. Everything above the runner (queue, residency, crash isolation, metrics, ledger, every API) is unchanged:
 * this file turns the runner protocol's requests into llama-server's native `/completion`, `/tokenize` and
 * `/apply-template` calls. Beside it: llamaServerProcess.ts (start, stop), llamaServerWire.ts (request mapping, answer
 * shapes, errors), llamaServerStream.ts (the streamed answer), llamaServerEmbedder.ts (the embeddings server).
 *
 * Isolation: llama-server listens on a Unix socket inside a fresh 0700 directory (llama-server binds a Unix socket
 * when its --host ends in .sock), not on a TCP port. A loopback port is reachable by every local user and process;
 * the socket only by this user, and each request also carries a random key (--api-key-file, 0600 in that directory).
 * If llama-server dies, the runner exits, so the server sees an ordinary runner crash (runner_crashed, restart).
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChatEvent, ChatMessage, ResponseFormat } from "../../core/chat.js";
import { forcesToolCall, messagesWithTools, toolCallSchema } from "../../core/tools.js";
import { requestError } from "./errors.js";
import { createEmbedder } from "./llamaServerEmbedder.js";
import { startServer, stopServer } from "./llamaServerProcess.js";
import { createRanker } from "./llamaServerRanker.js";
import { streamCompletion } from "./llamaServerStream.js";
import {
  type CompletionChunk,
  chatOf,
  completionBody,
  FALLBACK_STOP,
  type GenerateMessage,
  gpuLayersArgument,
  type ModelsAnswer,
  type Props,
} from "./llamaServerWire.js";
import type { LoadedInfo, LoadOptions } from "./protocol.js";
import type { RunnerModel } from "./runnerModel.js";
import { logitBiases } from "./sampling.js";

/** Links a split model's shards into `directory` under the names llama.cpp expects; returns the first one's path. */
function linkShards(directory: string, paths: string[]): string {
  const pad = (n: number) => String(n).padStart(5, "0");
  const names = paths.map((path, i) => {
    const name = join(directory, `model-${pad(i + 1)}-of-${pad(paths.length)}.gguf`);
    symlinkSync(path, name);
    return name;
  });
  return names[0]!;
}

/** Starts llama-server for a model and answers the runner protocol through it. */
export async function loadLlamaServerModel(options: LoadOptions): Promise<RunnerModel> {
  const started = performance.now();
  const binary = options.llamaServer;
  if (!binary) throw requestError("no llama-server binary was given to this runner", "model_load_failed", 500);
  // A split model: llama.cpp finds the other shards from the first one's name (PREFIX-00001-of-0000N.gguf), and the
  // store keeps blobs by digest, so llama-server gets links named that way in a private directory.
  const shards = options.paths.length > 1 ? mkdtempSync(join(tmpdir(), "freehold-shards-")) : undefined;
  const modelPath = shards ? linkShards(shards, options.paths) : options.paths[0]!;
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
    modelPath,
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
  ])
    .finally(() => {
      if (directoryForTemplate) rmSync(directoryForTemplate, { recursive: true, force: true });
    })
    .catch((error: unknown) => {
      if (shards) rmSync(shards, { recursive: true, force: true });
      throw error;
    });
  // llama-server dying is the runner dying: the server then reports runner_crashed and restarts it.
  let disposing = false;
  void server.exited.then(({ code, signal }) => {
    if (disposing) return;
    process.stderr.write(
      `llama-server stopped unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`}):\n${server.stderr().slice(-1500)}\n`,
    );
    rmSync(server.directory, { recursive: true, force: true });
    if (shards) rmSync(shards, { recursive: true, force: true });
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
    const grammar = grammarFor(message);
    const body = completionBody(message, prompt, maxTokens, { ...grammar, ...logitBiasOf(message.sampling.logitBias) });
    await streamCompletion({
      client,
      body,
      message,
      structured: grammar.json_schema !== undefined,
      promptLength,
      started,
      signal,
      emit,
      crashedOr,
    });
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

  // Embeddings need llama-server in embeddings mode: a second process on the same file, started on first use.
  const embedder = createEmbedder({
    binary,
    common,
    contextSize,
    tokenize,
    onStarted: (pid) => info.childPids.push(pid),
    disposing: () => disposing,
  });
  // Reranking needs llama-server in reranking mode: a third process on the same file, started on the first rerank.
  const ranker = createRanker({
    binary,
    common,
    modelPath: options.paths[0]!,
    contextSize,
    onStarted: (pid) => info.childPids.push(pid),
    disposing: () => disposing,
  });

  return {
    info,
    countTokens,
    generate,
    embed: (input) => embedder.embed(input),
    rank: (query, documents) => ranker.rank(query, documents),
    async dispose() {
      disposing = true;
      const others = await Promise.all([embedder.running(), ranker.running()]);
      for (const running of [server, ...others]) if (running) await stopServer(running);
      if (shards) rmSync(shards, { recursive: true, force: true });
    },
  };
}
