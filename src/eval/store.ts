import { createHash, randomUUID } from "node:crypto";
import type { EvalResultRow, EvalRows, EvalRunRow } from "../control/evalRows.js";
import type { AssertionResult } from "./assertions.js";
import type { ServedBy } from "./ports.js";
import type { Suite } from "./suite.js";

/** One scored answer: a model's answer to one case, one repeat. */
export interface EvalResult {
  model: string;
  caseId: string;
  repeat: number;
  output: string;
  /** The generation or a grader failed; the answer counts as a fail. */
  error: string | null;
  pass: boolean;
  assertions: AssertionResult[];
  promptTokens: number;
  completionTokens: number;
  ttftMs: number | null;
  durationMs: number;
  /** USD for this request: the provider's price, or electricity for local work; null when unpriced. */
  costUsd: number | null;
  servedBy: ServedBy | null;
}

export interface EvalRun {
  id: string;
  identity: string;
  suite: Suite;
  models: string[];
  baseline: string | null;
  repeat: number;
  createdMs: number;
  finishedMs: number | null;
}

function toRun(row: EvalRunRow): EvalRun {
  return {
    id: row.id,
    identity: row.identity,
    suite: JSON.parse(row.suite) as Suite,
    models: JSON.parse(row.models) as string[],
    baseline: row.baseline,
    repeat: row.repeat,
    createdMs: row.created_ms,
    finishedMs: row.finished_ms,
  };
}

function toResult(row: EvalResultRow): EvalResult {
  return {
    model: row.model,
    caseId: row.case_id,
    repeat: Number(row.repeat),
    output: row.output,
    error: row.error,
    pass: Number(row.pass) === 1,
    assertions: JSON.parse(row.assertions) as AssertionResult[],
    promptTokens: Number(row.prompt_tokens),
    completionTokens: Number(row.completion_tokens),
    ttftMs: row.ttft_ms === null ? null : Number(row.ttft_ms),
    durationMs: Number(row.duration_ms),
    costUsd: row.cost_usd === null ? null : Number(row.cost_usd),
    servedBy: row.served_by === null ? null : (JSON.parse(row.served_by) as ServedBy),
  };
}

/** What makes two invocations "the same run": the resolved suite, the models, the baseline and the repeats. */
export function runIdentity(suite: Suite, models: readonly string[], baseline: string | null, repeat: number): string {
  return createHash("sha256")
    .update(JSON.stringify([suite, models, baseline, repeat]))
    .digest("hex");
}

/**
 * Evaluation runs in the control plane's store (migration 2): the SQLite file on one box, or the PostgreSQL database
 * replicas share (ControlStore.evals). Each answer is committed as soon as it is scored, so a run killed at any point
 * continues from what was stored.
 */
export class EvalStore {
  constructor(private readonly rows: EvalRows) {}

  /** The newest unfinished run with this identity, if any. */
  async unfinished(identity: string): Promise<EvalRun | undefined> {
    const row = await this.rows.unfinished(identity);
    return row ? toRun(row) : undefined;
  }

  async create(
    suite: Suite,
    models: string[],
    baseline: string | null,
    repeat: number,
    now = Date.now(),
  ): Promise<EvalRun> {
    const run: EvalRun = {
      id: `eval_${randomUUID().replaceAll("-", "").slice(0, 16)}`,
      identity: runIdentity(suite, models, baseline, repeat),
      suite,
      models,
      baseline,
      repeat,
      createdMs: now,
      finishedMs: null,
    };
    await this.rows.create({
      id: run.id,
      identity: run.identity,
      suite_name: suite.name,
      suite: JSON.stringify(suite),
      models: JSON.stringify(models),
      baseline,
      repeat,
      created_ms: now,
      finished_ms: null,
    });
    return run;
  }

  async get(id: string): Promise<EvalRun | undefined> {
    const row = await this.rows.get(id);
    return row ? toRun(row) : undefined;
  }

  finish(id: string, now = Date.now()): Promise<void> {
    return this.rows.finish(id, now);
  }

  save(runId: string, result: EvalResult, now = Date.now()): Promise<void> {
    return this.rows.save({
      run_id: runId,
      model: result.model,
      case_id: result.caseId,
      repeat: result.repeat,
      output: result.output,
      error: result.error,
      pass: result.pass ? 1 : 0,
      assertions: JSON.stringify(result.assertions),
      prompt_tokens: result.promptTokens,
      completion_tokens: result.completionTokens,
      ttft_ms: result.ttftMs,
      duration_ms: result.durationMs,
      cost_usd: result.costUsd,
      served_by: result.servedBy ? JSON.stringify(result.servedBy) : null,
      time_ms: now,
    });
  }

  async results(runId: string): Promise<EvalResult[]> {
    return (await this.rows.results(runId)).map(toResult);
  }

  reference(runId: string, model: string, caseId: string): Promise<string | undefined> {
    return this.rows.reference(runId, model, caseId);
  }

  saveReference(runId: string, model: string, caseId: string, output: string): Promise<void> {
    return this.rows.saveReference(runId, model, caseId, output);
  }

  /** The newest runs, for `freehold eval --list` and the console. */
  async list(
    limit = 20,
  ): Promise<
    (Pick<EvalRun, "id" | "models" | "baseline" | "createdMs" | "finishedMs"> & { suite: string; results: number })[]
  > {
    return (await this.rows.list(limit)).map((row) => ({
      id: row.id,
      suite: row.suite_name,
      models: JSON.parse(row.models) as string[],
      baseline: row.baseline,
      createdMs: Number(row.created_ms),
      finishedMs: row.finished_ms === null ? null : Number(row.finished_ms),
      results: Number(row.results),
    }));
  }
}
