/**
 * A model loaded in the runner: load, then generate through the stages in this folder: prompt.ts (request → tokens),
 * sampling.ts (options and grammar → node-llama-cpp's evaluation options), sequencePool.ts (which KV-cache slot),
 * and tokenLoop.ts (each token through the filters to events).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Llama, LlamaContext, LlamaModel, Token } from "node-llama-cpp";
import type { ChatEvent } from "../../core/chat.js";
import { NativeToolCallParser } from "../../core/toolFormat.js";
import { DecodeStep } from "./decodeStep.js";
import { continuationDetokenizer } from "./detokenize.js";
import { checkDraftVocabulary, type VocabularyFacts } from "./draftVocabulary.js";
import { embedAndRank } from "./embedRank.js";
import { requestError } from "./errors.js";
import { toolPlanFor } from "./nativeTools.js";
import { fitPrompt } from "./overflow.js";
import { buildPrompt, chatTemplateFor, checkPrompt } from "./prompt.js";
import type { LoadedInfo, LoadOptions, RunnerRequest } from "./protocol.js";
import { reasoningMarkers } from "./reasoning.js";
import { evaluateOptions, GrammarCache, grammarFormat, logitBiases } from "./sampling.js";
import { SequencePool } from "./sequencePool.js";
import { TokenLoop } from "./tokenLoop.js";
import type { Vocabulary } from "./vocabulary.js";

/** FREEHOLD_KV_CACHE_TYPE's names → ggml's, as node-llama-cpp's experimentalKvCache*Type options take them. */
const kvCacheGgmlType = { f16: "F16", q8_0: "Q8_0", q4_0: "Q4_0" } as const;

export interface RunnerModel {
  info: LoadedInfo;
  /** Prompt tokens a request would use (its chat template and tools applied), without generating. */
  countTokens(request: RunnerRequest): number | Promise<number>;
  generate(request: RunnerRequest, signal: AbortSignal, emit: (event: ChatEvent) => void): Promise<void>;
  embed(input: string[]): Promise<{ vectors: number[][]; promptTokens: number }>;
  rank(query: string, documents: string[]): Promise<{ scores: number[]; promptTokens: number }>;
  dispose(): Promise<void>;
}

/** A loaded model's tokenizer, as the draft check reads it (GGUF metadata and node-llama-cpp's special tokens). */
function vocabularyFacts(model: LlamaModel): VocabularyFacts {
  const tokenizer = model.fileInfo.metadata.tokenizer;
  return {
    type: tokenizer?.ggml?.model,
    tokens: tokenizer?.ggml?.tokens ?? [],
    bos: model.tokens.bos,
    eos: model.tokens.eos,
  };
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
    maxThreads: options.threads,
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
  // A quantized KV cache needs flash attention; "on" for a model that cannot use it is ignored by node-llama-cpp.
  const flashAttention =
    options.flashAttention === "auto" ? "auto" : options.flashAttention === "on" && model.flashAttentionSupported;
  const kvType = kvCacheGgmlType[options.kvCacheType];
  let context: LlamaContext;
  try {
    context = await model.createContext({
      contextSize,
      sequences: options.sequences + 1,
      threads: { ideal: options.threads, min: options.threads },
      batchSize: Math.min(options.batchSize, contextSize),
      flashAttention,
      experimentalKvCacheKeyType: kvType,
      experimentalKvCacheValueType: kvType,
    });
  } catch (error) {
    await model.dispose();
    files.cleanup();
    // llama.cpp's own line ("quantized V cache requires flash_attn…") says it; node-llama-cpp's retries do not.
    const reason = recentLog
      .filter((line) => /requires|does not divide|not supported|error/i.test(line) && !/simulating/i.test(line))
      .slice(-2);
    throw requestError(
      `llama.cpp could not create the context (KV cache ${options.kvCacheType}, flash attention ${options.flashAttention}): ${reason.join("; ") || (error as Error).message}`,
      "model_load_failed",
      500,
    );
  }
  // One drafted token per step: node-llama-cpp (3.21.1, and 3.22.1 still) validates at most one drafted token per
  // verification and counts every later one refuted, even when the model agrees with it (`_speculativeEvaluate` reads
  // the previous validated token from a list it never fills). So drafting more only wastes work: on the 1B shape with
  // a draft that always agrees, 8 drafted tokens per step ran at 0.68x the model alone (26.9% accepted), 2 at 0.85x
  // (exactly 50%), 1 at 1.18x (100%). minTokens 1: wait for the token (with 0 the draft on CPU never had one ready).
  // test/draft.test.ts fails when node-llama-cpp validates more, so that this can grow then (docs/threads.md).
  const draftOptions = { minTokens: 1, maxTokens: 1 };
  // Speculative decoding: the draft model proposes tokens on its own sequence, each request's sequence verifies them
  // in one batch (node-llama-cpp's DraftSequenceTokenPredictor); at temperature 0 the output is the model's own.
  const draft = options.draft ? await loadDraft(options.draft) : undefined;
  const pool = new SequencePool(
    context,
    options.sequences + 1,
    draft ? () => new nlc.DraftSequenceTokenPredictor(draft.context.getSequence(), draftOptions) : undefined,
  );
  async function loadDraft(spec: NonNullable<LoadOptions["draft"]>) {
    const draftFiles = splitLinks(spec.paths);
    try {
      const draftModel = await llama.loadModel({ modelPath: draftFiles.path, gpuLayers: options.gpuLayers });
      try {
        checkDraftVocabulary(vocabularyFacts(model), vocabularyFacts(draftModel), {
          target: spec.model ?? "the model",
          draft: spec.name ?? "the draft model",
        });
      } catch (error) {
        await draftModel.dispose();
        throw error;
      }
      const draftContext = await draftModel.createContext({
        contextSize,
        sequences: options.sequences + 1,
        threads: { ideal: options.threads, min: options.threads },
        batchSize: Math.min(options.batchSize, contextSize),
      });
      return { model: draftModel, context: draftContext, files: draftFiles };
    } catch (error) {
      draftFiles.cleanup();
      if ((error as { code?: string }).code === "draft_vocabulary_mismatch") throw error;
      throw requestError(
        `llama.cpp could not load the draft model: ${(error as Error).message}`,
        "model_load_failed",
        500,
      );
    }
  }
  // Concurrent requests ask for their next tokens together, so that each decode carries all of them (decodeStep.ts).
  const step = new DecodeStep();

  const template = options.chatTemplate ?? model.fileInfo.metadata.tokenizer?.chat_template;
  const chatTemplate = chatTemplateFor(nlc, typeof template === "string" ? template : undefined, model);
  const vocabularySize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;

  const vramAfter = llama.gpu ? (await llama.getVramState()).used : 0;
  const info: LoadedInfo = {
    vramBytes: Math.max(0, vramAfter - vramBefore),
    contextSize: context.contextSize,
    trainContextSize: model.trainContextSize,
    threads: options.threads,
    // Threads no longer follow the load (docs/threads.md): the same count for one request and for several.
    busyThreads: options.threads,
    sequences: options.sequences,
    vocabularySize,
    embeddingLength: model.embeddingVectorSize,
    hasChatTemplate: typeof template === "string" && template.length > 0,
    chatFormat: chatTemplate.format,
    toolFormat: chatTemplate.native?.description ?? "json",
    backend: llama.gpu === false ? "cpu" : String(llama.gpu),
    gpuLayers: model.gpuLayers,
    loadMs: Math.round(performance.now() - started),
    flashAttention: flashAttention === "auto" ? "auto" : flashAttention ? "on" : "off",
    engine: "node-llama-cpp",
    vision: false,
    childPids: [],
  };

  const grammars = new GrammarCache(llama);
  const detokenize = continuationDetokenizer({
    detokenize: (tokens, specialTokens) => model.detokenize(tokens as Token[], specialTokens),
    tokenize: (text, specialTokens) => model.tokenize(text, specialTokens),
  });
  const vocabulary: Vocabulary = {
    detokenize,
    isEogToken: (token) => model.isEogToken(token as Token),
  };

  async function generate(
    request: RunnerRequest,
    signal: AbortSignal,
    emit: (event: ChatEvent) => void,
  ): Promise<void> {
    const started = performance.now();
    const plan = toolPlanFor(request, chatTemplate.native);
    const native = plan.mode === "native" ? chatTemplate.native : undefined;
    // A native forced call: the prompt ends with the format's opener, the grammar writes the call's JSON object.
    const grammar = await grammars.grammarFor(grammarFormat(request, native?.forced?.argumentsKey));
    const fitted = fitPrompt(
      request,
      context.contextSize,
      (r) => buildPrompt(model, chatTemplate, r),
      model.tokens.bos,
    );
    const { tokens, stops, text: promptText } = fitted.prompt;
    checkPrompt(tokens, vocabularySize, context.contextSize);
    if (fitted.truncation) emit({ type: "truncated", truncation: fitted.truncation });
    const biases = logitBiases(request.sampling.logitBias, { size: vocabularySize, isEogToken: vocabulary.isEogToken });
    const tokenBias = biases.length > 0 ? new nlc.TokenBias(model.tokenizer) : undefined;
    for (const { token, bias } of biases) tokenBias?.set(token, bias);
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
      {
        maxTokens,
        templateStops: stops,
        json: grammar !== undefined,
        promptTail: tokens.slice(-8),
        ...(native && request.kind === "chat" && request.toolChoice !== "none"
          ? {
              native: {
                // A forced call is one call (the grammar writes one object).
                parser: new NativeToolCallParser(
                  native.format,
                  request.tools ?? [],
                  !plan.forced && (request.parallelToolCalls ?? false),
                  plan.forced,
                ),
                forced: plan.forced,
              },
            }
          : {}),
        ...(request.kind === "chat" ? { reasoning: reasoningMarkers(chatTemplate.wrapper, promptText ?? "") } : {}),
      },
      emit,
    );
    const sequence = await pool.acquire(tokens);
    // The sequence's prediction counters grow across requests: this request's share is the difference.
    const predictedBefore = { ...sequence.tokenPredictions };
    let cachedTokens = 0;
    let firstTokenAt = 0;
    try {
      if (signal.aborted) return;
      // Reuse the KV cache of the prefix this slot already holds; at least one token is evaluated for fresh logits.
      cachedTokens = Math.min(sequence.compareContextTokens(tokens).firstDifferentIndex, tokens.length - 1);
      if (cachedTokens < sequence.nextTokenIndex) {
        // At a step boundary: otherwise the trim waits for every other request to finish (decodeStep.ts).
        await step.exclusive(() =>
          sequence.eraseContextTokenRanges([{ start: cachedTokens, end: sequence.nextTokenIndex }]),
        );
      }
      const grammarState = grammar ? new nlc.LlamaGrammarEvaluationState({ model, grammar }) : undefined;
      const evaluate = evaluateOptions(request.sampling, loop.generated as Token[], grammarState, tokenBias);
      const input = tokens.slice(cachedTokens);
      // Concurrent requests ask for their next tokens in step (decodeStep.ts); a replacement passes through.
      const iterator = step.pace(
        sequence.evaluateWithMetadata(
          input,
          { probabilities: request.logprobs !== undefined },
          evaluate,
        ) as AsyncGenerator<{ token: Token; probabilities?: Map<Token, number> }, void, Token[] | undefined>,
        pool.slotOf(sequence),
      );
      // Tokens to evaluate instead of the one just sampled (a forced end of reasoning), passed to next().
      let replacement: Token[] | undefined;
      try {
        for (;;) {
          const next = await iterator.next(replacement);
          replacement = undefined;
          if (next.done) break;
          if (signal.aborted) {
            loop.cancel();
            break;
          }
          if (firstTokenAt === 0) firstTokenAt = performance.now();
          if (!loop.push(next.value.token, next.value.probabilities)) break;
          const injection = loop.takeInjection();
          if (injection !== undefined) {
            replacement = model.tokenize(injection, true);
            loop.injected(replacement);
          }
        }
      } finally {
        await iterator.return();
      }
      loop.finish();
    } finally {
      pool.release(sequence);
    }
    const now = performance.now();
    const firstAt = firstTokenAt || now;
    emit({
      type: "usage",
      usage: { promptTokens: tokens.length, completionTokens: loop.completionTokens, cachedTokens },
      timing: {
        timeToFirstTokenMs: firstAt - started,
        promptMs: firstAt - started,
        generationMs: now - firstAt,
        ...(draft
          ? {
              draftTokens: {
                accepted: sequence.tokenPredictions.validated - predictedBefore.validated,
                rejected: sequence.tokenPredictions.refuted - predictedBefore.refuted,
              },
            }
          : {}),
      },
    });
    emit(
      loop.stopSequence !== undefined
        ? { type: "finish", reason: loop.reason, stopSequence: loop.stopSequence }
        : { type: "finish", reason: loop.reason },
    );
  }

  // Embeddings and ranking get contexts of their own on first use (embedRank.ts).
  const side = embedAndRank(model, Math.min(context.contextSize, 2048), options.threads);

  return {
    info,
    countTokens: (request) => buildPrompt(model, chatTemplate, request).tokens.length,
    generate,
    embed: (input) => side.embed(input),
    rank: (query, documents) => side.rank(query, documents),
    async dispose() {
      await side.dispose();
      await context.dispose();
      await model.dispose();
      if (draft) {
        await draft.context.dispose();
        await draft.model.dispose();
        draft.files.cleanup();
      }
      files.cleanup();
    },
  };
}
