// Child process: node-llama-cpp called directly, in process, as the floor for what freehold's runner could reach.
// Started by nodeLlamaCpp.ts with UV_THREADPOOL_SIZE=1 (as freehold starts its runners); talks over IPC.
import type { LlamaContext, LlamaContextSequence, LlamaModel, Token } from "node-llama-cpp";
import { decodeRate, type Sample } from "./sse.js";

export type WorkerRequest =
  | { type: "load"; modelPath: string; threads: number; contextSize: number }
  | { type: "run"; prompt: string; tokens: number };

export type WorkerReply =
  | { type: "loaded"; threads: number; contextSize: number }
  | { type: "sample"; sample: Sample }
  | { type: "error"; message: string };

let model: LlamaModel | undefined;
let context: LlamaContext | undefined;
let sequence: LlamaContextSequence | undefined;

function reply(message: WorkerReply): void {
  process.send?.(message);
}

async function load(request: Extract<WorkerRequest, { type: "load" }>): Promise<void> {
  const nlc = await import("node-llama-cpp");
  // The same settings as freehold's runner: maxThreads caps every context (its default is max(4, cores)).
  const llama = await nlc.getLlama({ gpu: false, logLevel: nlc.LlamaLogLevel.error, maxThreads: request.threads });
  model = await llama.loadModel({ modelPath: request.modelPath });
  context = await model.createContext({
    contextSize: request.contextSize,
    sequences: 1,
    threads: { ideal: request.threads, min: request.threads },
  });
  sequence = context.getSequence();
  reply({ type: "loaded", threads: context.currentThreads, contextSize: context.contextSize });
}

async function run(request: Extract<WorkerRequest, { type: "run" }>): Promise<void> {
  if (!model || !sequence) throw new Error("no model loaded");
  const started = performance.now();
  // Tokenize as freehold does for a text completion: no special tokens, BOS prepended when the model wants it.
  const tokens = model.tokenize(request.prompt, false);
  if (model.tokens.shouldPrependBosToken && model.tokens.bos !== null && tokens[0] !== model.tokens.bos)
    tokens.unshift(model.tokens.bos);
  await sequence.clearHistory();
  let generated = 0;
  let firstAt = 0;
  let lastAt = 0;
  const previous: Token[] = [];
  // yieldEogToken: end-of-generation tokens are yielded like any other, so it always runs for `tokens` tokens.
  for await (const token of sequence.evaluate(tokens, { temperature: 0, yieldEogToken: true })) {
    // Detokenize each token, as any server streaming text has to.
    model.detokenize([token], false, previous.slice(-8));
    previous.push(token);
    const now = performance.now();
    if (generated === 0) firstAt = now;
    lastAt = now;
    generated++;
    if (generated >= request.tokens) break;
  }
  reply({
    type: "sample",
    sample: {
      ttftMs: firstAt - started,
      decodeTokensPerSecond: decodeRate(generated, firstAt, lastAt),
      completionTokens: generated,
      promptTokens: tokens.length,
      textChunks: generated,
      totalMs: lastAt - started,
    },
  });
}

process.on("message", (message: WorkerRequest) => {
  const work = message.type === "load" ? load(message) : run(message);
  work.catch((error: unknown) => reply({ type: "error", message: String((error as Error)?.stack ?? error) }));
});
// The benchmark went away: so do we.
process.on("disconnect", () => process.exit(0));
