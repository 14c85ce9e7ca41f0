import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {
  ChatHistoryItem,
  ChatWrapper,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaGrammar,
  LlamaModel,
  Token,
} from "node-llama-cpp";
import type { ChatEvent, ChatMessage, FinishReason, ResponseFormat, TokenLogprob } from "../../core/chat.js";
import { JsonEndTracker } from "../../core/jsonEnd.js";
import { StopSequenceMatcher } from "../../core/stopSequences.js";
import { forcesToolCall, messagesWithTools, parseToolCalls, toolCallSchema } from "../../core/tools.js";
import type { LoadedInfo, LoadOptions, ParentMessage } from "./protocol.js";

type GenerateMessage = Extract<ParentMessage, { type: "generate" }>;

function requestError(message: string, code: string, status: number, param: string | null = null): Error {
  return Object.assign(new Error(message), { code, status, param, retryable: false });
}

/** The stop string the ChatML fallback needs when a model has no template (its markers are plain text then). */
const FALLBACK_STOP = "<|im_end|>";

export interface RunnerModel {
  info: LoadedInfo;
  /** Prompt tokens a request would use (its chat template and tools applied), without generating. */
  countTokens(message: GenerateMessage): number | Promise<number>;
  generate(message: GenerateMessage, signal: AbortSignal, emit: (event: ChatEvent) => void): Promise<void>;
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

function toHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  for (const message of messages) {
    if (message.role === "system") history.push({ type: "system", text: message.content });
    else if (message.role === "assistant") history.push({ type: "model", response: [message.content] });
    else history.push({ type: "user", text: message.content });
  }
  history.push({ type: "model", response: [] });
  return history;
}

/**
 * The sequences (slots) of one context. A request gets the free slot whose cached tokens share the longest prefix
 * with its prompt (a follow-up turn lands where its conversation is already evaluated); ties go to the slot idle the
 * longest. Requests wait in arrival order when none is free (the engine admits at most one per slot).
 *
 * Trimming a slot's cache while other slots generate can wait until they all finish: node-llama-cpp holds its context
 * lock while any decode is queued (measured: a trim started at 0.3 s ran at 2.1 s). So the pool keeps one slot more
 * than it admits, empties all but the two most recent while idle, and a request arriving while others generate takes
 * a slot that needs no trim.
 */
class SequencePool {
  private readonly free: LlamaContextSequence[];
  private readonly lastUsed = new Map<LlamaContextSequence, number>();
  private readonly waiting: ((sequence: LlamaContextSequence) => void)[] = [];
  private tick = 0;
  private active = 0;
  /** Requests holding or waiting for a sequence. */
  get busy(): number {
    return this.active;
  }
  constructor(context: LlamaContext, count: number) {
    this.free = Array.from({ length: count }, () => context.getSequence());
  }
  async acquire(tokens: Token[]): Promise<LlamaContextSequence> {
    this.active++;
    if (this.free.length === 0) return new Promise((resolve) => this.waiting.push(resolve));
    const othersGenerating = this.active > 1;
    let best = -1;
    let bestShared = -1;
    let bestNeedsTrim = true;
    for (const [index, sequence] of this.free.entries()) {
      const shared = sequence.compareContextTokens(tokens).firstDifferentIndex;
      const needsTrim = Math.min(shared, tokens.length - 1) < sequence.nextTokenIndex;
      const older = best === -1 || (this.lastUsed.get(sequence) ?? 0) < (this.lastUsed.get(this.free[best]!) ?? 0);
      // While others generate, a slot that needs no trim beats any cache hit that does.
      const better =
        best === -1 ||
        (othersGenerating && bestNeedsTrim && !needsTrim) ||
        ((!othersGenerating || needsTrim === bestNeedsTrim) &&
          (shared > bestShared || (shared === bestShared && older)));
      if (better) {
        best = index;
        bestShared = shared;
        bestNeedsTrim = needsTrim;
      }
    }
    return this.free.splice(best, 1)[0]!;
  }
  release(sequence: LlamaContextSequence): void {
    this.active--;
    this.lastUsed.set(sequence, ++this.tick);
    const next = this.waiting.shift();
    if (next) {
      next(sequence);
      return;
    }
    this.free.push(sequence);
    if (this.active === 0) void this.keepEmptySlots();
  }
  /**
   * When nothing generates (so a trim is quick), empties every free slot but the two most recently used: those keep
   * their conversations for follow-up turns, and a burst of new requests finds slots that need no trim.
   */
  private async keepEmptySlots(): Promise<void> {
    const byRecency = [...this.free].sort((a, b) => (this.lastUsed.get(b) ?? 0) - (this.lastUsed.get(a) ?? 0));
    const toEmpty = byRecency.slice(2).filter((sequence) => sequence.nextTokenIndex > 0);
    for (const sequence of toEmpty) {
      const index = this.free.indexOf(sequence);
      if (index === -1 || this.active > 0) return;
      this.free.splice(index, 1);
      try {
        await sequence.clearHistory();
      } finally {
        const next = this.waiting.shift();
        if (next) next(sequence);
        else this.free.push(sequence);
      }
    }
  }
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
  let chatWrapper: ChatWrapper | undefined;
  let templateError: string | undefined;
  if (typeof template === "string" && template.length > 0) {
    try {
      // Templates come from model files: untrusted. @huggingface/jinja interprets them in a sandbox with no access
      // to JavaScript globals, constructors or the process; anything that reaches for them fails to render.
      chatWrapper = new nlc.JinjaTemplateChatWrapper({ template, tokenizer: model.tokenizer });
    } catch (error) {
      templateError = (error as Error).message.split("\n")[0];
    }
  } else {
    chatWrapper = new nlc.ChatMLChatWrapper();
  }

  const vocabularySize = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 0;
  const eogTokens: Token[] = [];
  for (let token = 0; token < vocabularySize; token++)
    if (model.isEogToken(token as Token)) eogTokens.push(token as Token);

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
    chatFormat: templateError
      ? "template-error"
      : typeof template === "string" && template
        ? "jinja"
        : "chatml-fallback",
    backend: llama.gpu === false ? "cpu" : String(llama.gpu),
    gpuLayers: model.gpuLayers,
    loadMs: Math.round(performance.now() - started),
    engine: "node-llama-cpp",
    vision: false,
    childPids: [],
  };

  function promptTokens(message: GenerateMessage): { tokens: Token[]; stops: string[] } {
    if (message.kind === "completion" && Array.isArray(message.prompt)) {
      return { tokens: message.prompt as Token[], stops: [] };
    }
    if (message.kind === "completion") {
      const text = typeof message.prompt === "string" ? message.prompt : "";
      const tokens = model.tokenize(text, false);
      if (model.tokens.shouldPrependBosToken && model.tokens.bos !== null && tokens[0] !== model.tokens.bos)
        tokens.unshift(model.tokens.bos);
      return { tokens, stops: [] };
    }
    if (!chatWrapper) {
      throw requestError(
        `this model's chat template cannot be used (${templateError}); use /v1/completions instead`,
        "chat_template_error",
        400,
      );
    }
    let state: ReturnType<ChatWrapper["generateContextState"]>;
    try {
      const messages = messagesWithTools(
        message.messages ?? [],
        message.tools,
        message.toolChoice,
        message.parallelToolCalls ?? false,
      );
      state = chatWrapper.generateContextState({ chatHistory: toHistory(messages) });
    } catch (error) {
      throw requestError(
        `the model's chat template failed to render: ${(error as Error).message.split("\n")[0]}`,
        "chat_template_error",
        400,
      );
    }
    const stops: string[] = [];
    for (const trigger of state.stopGenerationTriggers) {
      if (trigger.values.every((value) => typeof value === "string")) stops.push(trigger.values.join(""));
    }
    if (!info.hasChatTemplate) stops.push(FALLBACK_STOP);
    return { tokens: state.contextText.tokenize(model.tokenizer), stops };
  }

  // Grammars compile once per distinct schema; a few dozen cover any real workload.
  const grammars = new Map<string, Promise<LlamaGrammar>>();
  function grammarFor(format: ResponseFormat | undefined): Promise<LlamaGrammar> | undefined {
    if (!format || format.type === "text") return undefined;
    const key = format.type === "json" ? "json" : JSON.stringify(format.schema);
    let grammar = grammars.get(key);
    if (!grammar) {
      grammar =
        format.type === "json"
          ? llama.getGrammarFor("json")
          : llama.createGrammarForJsonSchema(format.schema as Parameters<Llama["createGrammarForJsonSchema"]>[0]);
      grammar.catch(() => grammars.delete(key));
      if (grammars.size >= 32) grammars.delete(grammars.keys().next().value!);
      grammars.set(key, grammar);
    }
    return grammar;
  }

  async function generate(
    message: GenerateMessage,
    signal: AbortSignal,
    emit: (event: ChatEvent) => void,
  ): Promise<void> {
    const started = performance.now();
    let grammar: LlamaGrammar | undefined;
    try {
      const forced = forcesToolCall(message.tools, message.toolChoice);
      grammar = await grammarFor(
        forced
          ? { type: "json-schema", schema: toolCallSchema(message.tools ?? [], message.toolChoice ?? "required") }
          : message.responseFormat,
      );
    } catch (error) {
      throw requestError(
        `the JSON schema cannot be turned into a grammar: ${(error as Error).message.split("\n")[0]}`,
        "invalid_schema",
        400,
        "response_format",
      );
    }
    const { tokens, stops } = promptTokens(message);
    for (const token of tokens) {
      if (token < 0 || token >= vocabularySize)
        throw requestError(`token id ${token} is out of range`, "invalid_token", 400, "prompt");
    }
    if (tokens.length >= context.contextSize) {
      throw requestError(
        `this model's context is ${context.contextSize} tokens; the prompt has ${tokens.length}. Shorten the prompt.`,
        "context_length_exceeded",
        400,
        "messages",
      );
    }
    const room = context.contextSize - tokens.length;
    const maxTokens = Math.min(message.limits.maxTokens ?? room, room);
    if (maxTokens <= 0) {
      // Nothing to generate (Ollama's num_predict 0): report the prompt and stop.
      emit({ type: "usage", usage: { promptTokens: tokens.length, completionTokens: 0 } });
      emit({ type: "finish", reason: "length" });
      return;
    }
    const matcher = new StopSequenceMatcher([...(message.limits.stop ?? []), ...stops]);
    const sampling = message.sampling;
    const sequence = await pool.acquire(tokens);
    let completionTokens = 0;
    let cachedTokens = 0;
    let reason: FinishReason = "length";
    let stopSequence: string | undefined;
    let firstTokenAt = 0;
    let inPrompt = false;
    try {
      if (signal.aborted) {
        reason = "cancelled";
        return;
      }
      // Reuse the KV cache of the prefix this slot already holds; at least one token is evaluated for fresh logits.
      cachedTokens = Math.min(sequence.compareContextTokens(tokens).firstDifferentIndex, tokens.length - 1);
      if (cachedTokens < sequence.nextTokenIndex) {
        await sequence.eraseContextTokenRanges([{ start: cachedTokens, end: sequence.nextTokenIndex }]);
      }
      const penalize =
        (sampling.repeatPenalty ?? 1) !== 1 ||
        (sampling.presencePenalty ?? 0) !== 0 ||
        (sampling.frequencyPenalty ?? 0) !== 0;
      const generated: Token[] = [];
      const lastN = sampling.repeatLastN ?? 64;
      const evaluateOptions = {
        temperature: sampling.temperature ?? 0.8,
        ...(sampling.topK !== undefined ? { topK: sampling.topK } : {}),
        ...(sampling.topP !== undefined ? { topP: sampling.topP } : {}),
        ...(sampling.minP !== undefined ? { minP: sampling.minP } : {}),
        ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
        ...(penalize
          ? {
              repeatPenalty: {
                punishTokens: () => generated.slice(-lastN),
                maxPunishTokens: lastN,
                penalty: sampling.repeatPenalty ?? 1,
                presencePenalty: sampling.presencePenalty ?? 0,
                frequencyPenalty: sampling.frequencyPenalty ?? 0,
              },
            }
          : {}),
        yieldEogToken: true,
        ...(grammar ? { grammarEvaluationState: new nlc.LlamaGrammarEvaluationState({ model, grammar }) } : {}),
      };
      const input = tokens.slice(cachedTokens);
      promptsEvaluating++;
      inPrompt = true;
      const logprobs = message.logprobs !== undefined ? new LogprobTracker(model, message.logprobs) : undefined;
      const iterator: AsyncIterable<{ token: Token; probabilities?: Map<Token, number> }> = logprobs
        ? sequence.evaluateWithMetadata(input, { probabilities: true }, evaluateOptions)
        : tokensOnly(sequence.evaluate(input, evaluateOptions));
      /** Sends released text with the logprobs of the tokens it completes. */
      const send = (text: string) => {
        const entries = logprobs?.release(text);
        if (text || entries?.length)
          emit(entries ? { type: "text-delta", text, logprobs: entries } : { type: "text-delta", text });
      };
      let pending: Token[] = [];
      // Tool calls: a forced call is buffered from the start; with "auto", an answer that opens with "{" is held
      // back until it ends, then becomes a call if it is one (else it is sent as text).
      const toolsOffered = message.kind === "chat" && (message.tools?.length ?? 0) > 0 && message.toolChoice !== "none";
      let toolMode: "undecided" | "tool" | "text" = forcesToolCall(message.tools, message.toolChoice)
        ? "tool"
        : toolsOffered
          ? "undecided"
          : "text";
      let toolBuffer = "";
      let jsonTracker = grammar || toolMode === "tool" ? new JsonEndTracker() : undefined;
      let stoppedBySequence = false;
      for await (const { token, probabilities } of iterator) {
        if (signal.aborted) {
          reason = "cancelled";
          break;
        }
        if (completionTokens === 0) firstTokenAt = performance.now();
        if (inPrompt) {
          inPrompt = false;
          promptsEvaluating--;
        }
        if (!message.limits.ignoreEos && model.isEogToken(token)) {
          reason = "stop";
          break;
        }
        completionTokens++;
        generated.push(token);
        pending.push(token);
        if (logprobs && probabilities && toolMode !== "tool")
          // The tokens before it decide how it reads (a word-start token's leading space, say).
          logprobs.add(
            token,
            probabilities,
            generated.length > 8 ? generated.slice(-9, -1) : [...tokens.slice(-8), ...generated].slice(-9, -1),
          );
        let text = model.detokenize(pending, false, generated.slice(-pending.length - 8, -pending.length));
        // A token can end inside a UTF-8 character (byte fallback): wait for the rest, up to 4 bytes.
        if (text.endsWith("\uFFFD") && pending.length < 4 && completionTokens < maxTokens) continue;
        pending = [];
        if (eogTokens.includes(token)) text = "";
        if (toolMode === "undecided") {
          toolBuffer += text;
          const start = toolBuffer.trimStart();
          if (start.length === 0) {
            if (completionTokens >= maxTokens) {
              reason = "length";
              break;
            }
            continue;
          }
          toolMode = start.startsWith("{") || (message.parallelToolCalls && start.startsWith("[")) ? "tool" : "text";
          text = toolBuffer;
          toolBuffer = "";
          if (toolMode === "tool") {
            jsonTracker ??= new JsonEndTracker();
            logprobs?.clear();
          }
        }
        // With a JSON grammar, the closing bracket ends the answer (the grammar would allow endless whitespace).
        const jsonEnd = jsonTracker?.push(text) ?? -1;
        if (jsonEnd >= 0) text = text.slice(0, jsonEnd);
        if (toolMode === "tool") {
          toolBuffer += text;
          if (jsonEnd >= 0) {
            reason = "stop";
            break;
          }
          if (completionTokens >= maxTokens) {
            reason = "length";
            break;
          }
          continue;
        }
        logprobs?.place(text);
        const result = matcher.push(text);
        send(result.text);
        if (result.stopped || jsonEnd >= 0) {
          reason = "stop";
          if (result.stopped) stoppedBySequence = true;
          if (result.stop !== undefined && message.limits.stop?.includes(result.stop)) stopSequence = result.stop;
          if (jsonEnd >= 0) send(matcher.flush());
          break;
        }
        if (completionTokens >= maxTokens) {
          reason = "length";
          break;
        }
      }
      if (toolBuffer && reason !== "cancelled") {
        const calls = parseToolCalls(toolBuffer, message.tools ?? [], message.parallelToolCalls ?? false);
        if (calls) {
          for (const call of calls)
            emit({ type: "tool-call", call: { id: `call_${randomBytes(12).toString("hex")}`, ...call } });
          reason = "tool-calls";
        } else {
          emit({ type: "text-delta", text: toolBuffer });
        }
      } else if (reason !== "cancelled" && !stoppedBySequence) {
        // Text held back for a stop sequence that never came, with its tokens' logprobs.
        logprobs?.place("");
        send(matcher.flush());
      }
    } finally {
      if (inPrompt) promptsEvaluating--;
      pool.release(sequence);
    }
    const now = performance.now();
    const firstAt = firstTokenAt || now;
    emit({
      type: "usage",
      usage: { promptTokens: tokens.length, completionTokens, cachedTokens },
      timing: { timeToFirstTokenMs: firstAt - started, promptMs: firstAt - started, generationMs: now - firstAt },
    });
    emit(stopSequence !== undefined ? { type: "finish", reason, stopSequence } : { type: "finish", reason });
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
    countTokens: (message) => promptTokens(message).tokens.length,
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

/** log(p), floored at -9999 the way OpenAI reports tokens that were practically impossible. */
function logOf(probability: number): number {
  return probability > 0 ? Math.max(Math.log(probability), -9999) : -9999;
}

/**
 * Pairs generated tokens' log probabilities with the text the client receives. Each token's entry is "placed" at
 * the end of the text it produced, and "released" with the delta that completes that text, so text held back for
 * a possible stop sequence keeps its entries back too, and the tokens of a stop sequence never appear.
 */
class LogprobTracker {
  private unplaced: TokenLogprob[] = [];
  private placed: { end: number; entry: TokenLogprob }[] = [];
  private rawLength = 0;
  private releasedLength = 0;

  constructor(
    private readonly model: LlamaModel,
    private readonly alternatives: number,
  ) {}

  private alternative(token: Token, probability: number, before: Token[]) {
    const text = this.model.detokenize([token], true, before);
    return { token: text, bytes: [...Buffer.from(text, "utf8")], logprob: logOf(probability) };
  }

  /** `before`: the tokens preceding this one (prompt, then generated). */
  add(token: Token, probabilities: Map<Token, number>, before: Token[]): void {
    const top: TokenLogprob["top"] = [];
    for (const [candidate, probability] of probabilities) {
      if (top.length >= this.alternatives) break;
      top.push(this.alternative(candidate, probability, before));
    }
    this.unplaced.push({ ...this.alternative(token, probabilities.get(token) ?? 0, before), top });
  }

  /** `text` (the output of the tokens added since the last call) goes to the client's stream next. */
  place(text: string): void {
    this.rawLength += text.length;
    for (const entry of this.unplaced) this.placed.push({ end: this.rawLength, entry });
    this.unplaced = [];
  }

  /** `text` was sent: the entries whose text it completes. */
  release(text: string): TokenLogprob[] {
    this.releasedLength += text.length;
    let count = 0;
    while (count < this.placed.length && this.placed[count]!.end <= this.releasedLength) count++;
    return this.placed.splice(0, count).map((item) => item.entry);
  }

  clear(): void {
    this.unplaced = [];
    this.placed = [];
  }
}

/**
 * Threads per decode that follow the load (docs/threads.md): `threads` while one request generates, `busyThreads`
 * while several share each decode or a prompt is being evaluated, where a second thread pays off (a bigger batch
 * per barrier). Before every batch
 * it decodes, node-llama-cpp asks the context's thread-splitter consumer (made by `_reserveThreads`, dropped when
 * idle) how many threads to use; this caps that answer by how many requests are generating. It reaches into
 * node-llama-cpp 3.21.1's internals (pinned): when they are not there, the context keeps `threads` throughout.
 * Returns the thread counts in use for one request and for several.
 */
function useMoreThreadsWhenBusy(
  context: LlamaContext,
  threads: number,
  busyThreads: number,
  busy: () => boolean,
): { idle: number; busy: number } {
  type Allocation = [number, unknown] | undefined;
  type Consumer = { getAllocationToConsume?: () => Allocation | Promise<Allocation>; capped?: boolean };
  const internals = context as unknown as { _reserveThreads?: () => void; _threadSplitterConsumer?: Consumer };
  const reserve = internals._reserveThreads;
  if (busyThreads === threads || typeof reserve !== "function") return { idle: threads, busy: threads };
  const cap = (allocation: Allocation): Allocation =>
    allocation && [Math.min(allocation[0], busy() ? busyThreads : threads), allocation[1]];
  internals._reserveThreads = function (this: typeof internals) {
    reserve.call(this);
    const consumer = this._threadSplitterConsumer;
    const allocate = consumer?.getAllocationToConsume;
    if (!consumer || consumer.capped || typeof allocate !== "function") return;
    consumer.capped = true;
    consumer.getAllocationToConsume = () => {
      const allocation = allocate.call(consumer);
      return allocation instanceof Promise ? allocation.then(cap) : cap(allocation);
    };
  };
  return { idle: threads, busy: busyThreads };
}
