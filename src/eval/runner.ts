import type { ChatRequest, GenerateRequest, Usage } from "../core/chat.js";
import { type AssertionResult, evaluateAssertion, type Graders } from "./assertions.js";
import { parseVerdict, type Verdict } from "./judge.js";
import type { EvalModels, Pricing, ServedBy } from "./ports.js";
import type { EvalResult, EvalRun, EvalStore } from "./store.js";
import type { EvalCase } from "./suite.js";

export interface RunProgress {
  done: number;
  total: number;
  /** The answer just scored (absent for the first report of a resumed run). */
  last?: EvalResult;
}

export interface RunOptions {
  concurrency: number;
  signal?: AbortSignal;
  onProgress?: (progress: RunProgress) => void;
}

/** The request a case sends to a model. */
export function caseRequest(item: EvalCase, model: string): GenerateRequest {
  const options = item.options;
  const base = {
    model,
    sampling: {
      ...(options.temperature !== undefined ? { temperature: options.temperature } : {}),
      ...(options.top_p !== undefined ? { topP: options.top_p } : {}),
      ...(options.top_k !== undefined ? { topK: options.top_k } : {}),
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
    },
    limits: {
      ...(options.max_tokens !== undefined ? { maxTokens: options.max_tokens } : {}),
      ...(options.stop ? { stop: options.stop } : {}),
    },
    ...(options.response_format === "json"
      ? { responseFormat: { type: "json" as const } }
      : options.response_format
        ? { responseFormat: { type: "json-schema" as const, schema: options.response_format.json_schema } }
        : {}),
  };
  if (item.prompt !== undefined) return { kind: "completion", prompt: item.prompt, ...base };
  return { kind: "chat", messages: item.messages ?? [], ...base };
}

interface Answer {
  text: string;
  usage: Usage;
  ttftMs: number | null;
  durationMs: number;
  servedBy: ServedBy;
}

async function answer(
  models: EvalModels,
  spec: string,
  request: GenerateRequest,
  signal?: AbortSignal,
): Promise<Answer> {
  const started = performance.now();
  let ttftMs: number | null = null;
  let text = "";
  let usage: Usage = { promptTokens: 0, completionTokens: 0 };
  const { events, servedBy } = models.generate(spec, request, signal);
  for await (const event of events) {
    if (event.type === "text-delta") {
      ttftMs ??= performance.now() - started;
      text += event.text;
    } else if (event.type === "usage") usage = event.usage;
    else if (event.type === "error") throw new Error(`${spec}: ${event.error.message}`);
  }
  return { text, usage, ttftMs, durationMs: performance.now() - started, servedBy: servedBy() };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Runs every case on every model `repeat` times, `concurrency` at a time, skipping answers the store already holds
 * (a resumed run). Each answer is scored and committed before the next is taken, so cancelling (the signal) or
 * killing the process loses at most the answers in flight. Returns every result of the run.
 */
export async function runEvaluation(
  run: EvalRun,
  models: EvalModels,
  store: EvalStore,
  pricing: Pricing,
  options: RunOptions,
): Promise<EvalResult[]> {
  const { suite } = run;
  const signal = options.signal;
  const done = new Set(
    (await store.results(run.id)).map((result) => `${result.model}\u0000${result.caseId}\u0000${result.repeat}`),
  );
  const tasks: { model: string; item: EvalCase; repeat: number }[] = [];
  for (const item of suite.cases)
    for (let repeat = 0; repeat < run.repeat; repeat++)
      for (const model of run.models)
        if (!done.has(`${model}\u0000${item.id}\u0000${repeat}`)) tasks.push({ model, item, repeat });
  const total = suite.cases.length * run.repeat * run.models.length;
  let completed = total - tasks.length;
  options.onProgress?.({ done: completed, total });

  const references = new Map<string, Promise<string>>();
  const graders: Graders = {
    async verdict(request: ChatRequest): Promise<Verdict> {
      const reply = await answer(models, request.model, request, signal);
      return parseVerdict(request.model, reply.text);
    },
    async embed(model, texts) {
      return (await models.embed(model, texts, signal)).vectors;
    },
    referenceAnswer(model, item) {
      const key = `${model}\u0000${item.id}`;
      let pending = references.get(key);
      if (!pending) {
        pending = store.reference(run.id, model, item.id).then(async (stored) => {
          if (stored !== undefined) return stored;
          const reply = await answer(models, model, caseRequest(item, model), signal);
          await store.saveReference(run.id, model, item.id, reply.text);
          return reply.text;
        });
        pending.catch(() => references.delete(key));
        references.set(key, pending);
      }
      return pending;
    },
  };

  const score = async (model: string, item: EvalCase, repeat: number): Promise<EvalResult> => {
    const empty = { promptTokens: 0, completionTokens: 0, ttftMs: null, durationMs: 0, costUsd: null, servedBy: null };
    let reply: Answer;
    try {
      reply = await answer(models, model, caseRequest(item, model), signal);
    } catch (error) {
      const detail = `no answer: ${message(error)}`;
      return {
        model,
        caseId: item.id,
        repeat,
        output: "",
        error: message(error),
        pass: false,
        assertions: item.assert.map((entry) => ({ type: entry.type, pass: false, detail })),
        ...empty,
      };
    }
    const facts = { text: reply.text, completionTokens: reply.usage.completionTokens, durationMs: reply.durationMs };
    const assertions: AssertionResult[] = [];
    let error: string | null = null;
    for (const entry of item.assert) {
      try {
        assertions.push(await evaluateAssertion(entry, facts, item, graders, suite));
      } catch (failure) {
        error ??= message(failure);
        assertions.push({ type: entry.type, pass: false, detail: `could not grade: ${message(failure)}` });
      }
    }
    const costUsd = reply.servedBy.remote
      ? pricing.cost(reply.servedBy.model, reply.usage.promptTokens, reply.usage.completionTokens)
      : pricing.energyCost(reply.durationMs);
    return {
      model,
      caseId: item.id,
      repeat,
      output: reply.text,
      error,
      pass: error === null && assertions.every((entry) => entry.pass),
      assertions,
      promptTokens: reply.usage.promptTokens,
      completionTokens: reply.usage.completionTokens,
      ttftMs: reply.ttftMs,
      durationMs: reply.durationMs,
      costUsd,
      servedBy: reply.servedBy,
    };
  };

  let next = 0;
  const worker = async () => {
    while (next < tasks.length && !signal?.aborted) {
      const task = tasks[next++]!;
      const result = await score(task.model, task.item, task.repeat);
      // An answer cut short by cancelling is not a result: the resumed run asks again.
      if (signal?.aborted) return;
      await store.save(run.id, result);
      completed++;
      options.onProgress?.({ done: completed, total, last: result });
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency, tasks.length)) }, worker));
  if (!signal?.aborted) await store.finish(run.id);
  return store.results(run.id);
}
