/**
 * A model loaded in the runner: load, then generate through the stages in this folder: prompt.ts (request → tokens),
 * sampling.ts (options and grammar → node-llama-cpp's evaluation options), sequencePool.ts (which KV-cache slot),
 * and tokenLoop.ts (each token through the filters to events).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Llama, LlamaEmbeddingContext, LlamaModel, Token } from "node-llama-cpp";
import type { ChatEvent } from "../../core/chat.js";
import { requestError } from "./errors.js";
import { buildPrompt, chatTemplateFor, checkPrompt } from "./prompt.js";
import type { LoadedInfo, LoadOptions, RunnerRequest } from "./protocol.js";
import { evaluateOptions, GrammarCache, grammarFormat } from "./sampling.js";
import { SequencePool } from "./sequencePool.js";
import { useMoreThreadsWhenBusy } from "./threadsWhenBusy.js";
import { TokenLoop } from "./tokenLoop.js";
import type { Vocabulary } from "./vocabulary.js";

export interface RunnerModel {
  info: LoadedInfo;
  /** Prompt tokens a request would use (its chat template and tools applied), without generating. */
  countTokens(request: RunnerRequest): number | Promise<number>;
  generate(request: RunnerRequest, signal: AbortSignal, emit: (event: ChatEvent) => void): Promise<void>;
  embed(input: string[]): Promise<{ vectors: number[][]; promptTokens: number }>;
  dispose(): Promise<void>;
}

/** llama.cpp finds the shards of a split model by their names; blobs are named by digest, so link them by shard name. */
function splitLinks(paths: string[]): { path: string; cleanup: () => void } {
  if (paths.length === 1) return { path: paths[0]!, cleanup: () => {} };
  const directory = mkdtempSync(join(tmpdir(), "freehold-split-"));
  mkdirSync(directory, { recursive: true });
  const count = String(paths.length).padStart(5, "0");
  paths.forEach((path, index) => {
    symlinkSync(path, join(directory, `model-${String(index + 1).padStart(5, "0")}-of-${count}.gguf`));
  });
  return {
    path: join(directory, `model-00001-of-${count}.gguf`),
    cleanup: () => rmSync(directory, { recursive: true, force: true }),
  };
}

export async function loadRunnerModel(options: LoadOptions): Promise<RunnerModel> {
  const started = performance.now();
  const nlc = await import("node-llama-cpp");
  // llama.cpp says why a load failed only in its log: keep the last warnings and errors for the error message.
  const recentLog: string[] = [];
  const llama: Llama = await nlc.getLlama({
    gpu: "auto",
    logLevel: nlc.LlamaLogLevel.warn,
    maxThreads: Math.max(options.threads, options.busyThreads ?? options.threads),
    logger: (level, message) => {
      if (level !== nlc.LlamaLogLevel.error && level !== nlc.LlamaLogLevel.warn) return;
      const line = message.trim();
      if (!line) return;
      recentLog.push(line);
      if (recentLog.length > 20) recentLog.shift();
    },
  });
  const files = splitLinks(options.paths);
  // What this model takes on the GPU: the device's used memory before and after loading it (0 on CPU).
  const vramBefore = llama.gpu ? (await llama.getVramState()).used : 0;
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: files.path, gpuLayers: options.gpuLayers });
  } catch (error) {
    files.cleanup();
    // llama.cpp's "error loading model: <why>" line says it best; other warnings only when it is missing.
    const errors = recentLog.filter((line) => /error loading model|error:/i.test(line));
    const reason = (
      errors.length > 0 ? errors : recentLog.filter((line) => /fail|unknown|missing|invalid|unsupported/i.test(line))
    )
      .slice(-2)
      .join("; ");
    throw requestError(
      `llama.cpp could not load the model: ${reason || (error as Error).message}`,
      "model_load_failed",
      500,
    );
  }
  const contextSize = Math.min(options.contextSize, model.trainContextSize || options.contextSize);
  // Threads that follow the load need node-llama-cpp's internals (useMoreThreadsWhenBusy); without them the context
  // is made for `threads` alone, so it can never run more threads than asked for a single request.
  const canFollowLoad =
    typeof (nlc.LlamaContext?.prototype as { _reserveThreads?: unknown } | undefined)?._reserveThreads === "function";
  const busyThreads = canFollowLoad
    ? Math.max(options.threads, options.busyThreads ?? options.threads)
    : options.threads;
  const context = await model.createContext({
    contextSize,
    sequences: options.sequences + 1,
    threads: { ideal: busyThreads, min: options.threads },
    batchSize: Math.min(options.batchSize, contextSize),
  });
  const pool = new SequencePool(context, options.sequences + 1);
  // Prompts being evaluated: a long batch of tokens, where a second thread pays off even for a single request.
  let promptsEvaluating = 0;
  const threadsInUse = useMoreThreadsWhenBusy(
    context,
    options.threads,
    busyThreads,
    () => pool.busy > 1 || promptsEvaluating > 0,
  );

  const template = options.chatTemplate ?? model.fileInfo.metadata.tokenizer?.chat_template;
  const chatTemplate = chatTemplateFor(nlc, typeof template === "string" ? template : undefined, model);
  const vocabularySize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;

  const vramAfter = llama.gpu ? (await llama.getVramState()).used : 0;
  const info: LoadedInfo = {
    vramBytes: Math.max(0, vramAfter - vramBefore),
    contextSize: context.contextSize,
    trainContextSize: model.trainContextSize,
    threads: threadsInUse.idle,
    busyThreads: threadsInUse.busy,
    sequences: options.sequences,
    vocabularySize,
    embeddingLength: model.embeddingVectorSize,
    hasChatTemplate: typeof template === "string" && template.length > 0,
    chatFormat: chatTemplate.format,
    backend: llama.gpu === false ? "cpu" : String(llama.gpu),
    gpuLayers: model.gpuLayers,
    loadMs: Math.round(performance.now() - started),
    engine: "node-llama-cpp",
    vision: false,
    childPids: [],
  };

  const grammars = new GrammarCache(llama);
  const vocabulary: Vocabulary = {
    detokenize: (tokens, specialTokens, before) =>
      model.detokenize(tokens as Token[], specialTokens, before as Token[]),
    isEogToken: (token) => model.isEogToken(token as Token),
  };

  async function generate(
    request: RunnerRequest,
    signal: AbortSignal,
    emit: (event: ChatEvent) => void,
  ): Promise<void> {
    const started = performance.now();
    const grammar = await grammars.grammarFor(grammarFormat(request));
    const { tokens, stops } = buildPrompt(model, chatTemplate, request);
    checkPrompt(tokens, vocabularySize, context.contextSize);
    const room = context.contextSize - tokens.length;
    const maxTokens = Math.min(request.limits.maxTokens ?? room, room);
    if (maxTokens <= 0) {
      // Nothing to generate (Ollama's num_predict 0): report the prompt and stop.
      emit({ type: "usage", usage: { promptTokens: tokens.length, completionTokens: 0 } });
      emit({ type: "finish", reason: "length" });
      return;
    }
    const loop = new TokenLoop(
      vocabulary,
      request,
      { maxTokens, templateStops: stops, json: grammar !== undefined, promptTail: tokens.slice(-8) },
      emit,
    );
    const sequence = await pool.acquire(tokens);
    let cachedTokens = 0;
    let firstTokenAt = 0;
    let inPrompt = false;
    try {
      if (signal.aborted) return;
      // Reuse the KV cache of the prefix this slot already holds; at least one token is evaluated for fresh logits.
      cachedTokens = Math.min(sequence.compareContextTokens(tokens).firstDifferentIndex, tokens.length - 1);
      if (cachedTokens < sequence.nextTokenIndex) {
        await sequence.eraseContextTokenRanges([{ start: cachedTokens, end: sequence.nextTokenIndex }]);
      }
      const grammarState = grammar ? new nlc.LlamaGrammarEvaluationState({ model, grammar }) : undefined;
      const evaluate = evaluateOptions(request.sampling, loop.generated as Token[], grammarState);
      const input = tokens.slice(cachedTokens);
      promptsEvaluating++;
      inPrompt = true;
      const iterator: AsyncIterable<{ token: Token; probabilities?: Map<Token, number> }> =
        request.logprobs !== undefined
          ? sequence.evaluateWithMetadata(input, { probabilities: true }, evaluate)
          : tokensOnly(sequence.evaluate(input, evaluate));
      for await (const { token, probabilities } of iterator) {
        if (signal.aborted) {
          loop.cancel();
          break;
        }
        if (firstTokenAt === 0) firstTokenAt = performance.now();
        if (inPrompt) {
          inPrompt = false;
          promptsEvaluating--;
        }
        if (!loop.push(token, probabilities)) break;
      }
      loop.finish();
    } finally {
      if (inPrompt) promptsEvaluating--;
      pool.release(sequence);
    }
    const now = performance.now();
    const firstAt = firstTokenAt || now;
    emit({
      type: "usage",
      usage: { promptTokens: tokens.length, completionTokens: loop.completionTokens, cachedTokens },
      timing: { timeToFirstTokenMs: firstAt - started, promptMs: firstAt - started, generationMs: now - firstAt },
    });
    emit(
      loop.stopSequence !== undefined
        ? { type: "finish", reason: loop.reason, stopSequence: loop.stopSequence }
        : { type: "finish", reason: loop.reason },
    );
  }

  let embeddingContext: Promise<LlamaEmbeddingContext> | undefined;
  const embeddingContextSize = Math.min(context.contextSize, 2048);
  async function embed(input: string[]): Promise<{ vectors: number[][]; promptTokens: number }> {
    embeddingContext ??= model.createEmbeddingContext({
      contextSize: Math.min(context.contextSize, 2048),
      threads: options.threads,
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
    info,
    countTokens: (request) => buildPrompt(model, chatTemplate, request).tokens.length,
    generate,
    embed,
    async dispose() {
      if (embeddingContext) await (await embeddingContext).dispose();
      await context.dispose();
      await model.dispose();
      files.cleanup();
    },
  };
}

async function* tokensOnly(tokens: AsyncIterable<Token>): AsyncGenerator<{ token: Token }> {
  for await (const token of tokens) yield { token };
}
