import { createHash, randomUUID } from "node:crypto";
import type { ControlDatabase } from "../control/database.js";
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

interface RunRow {
  id: string;
  identity: string;
  suite: string;
  models: string;
  baseline: string | null;
  repeat: number;
  created_ms: number;
  finished_ms: number | null;
}

function toRun(row: RunRow): EvalRun {
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

/** What makes two invocations "the same run": the resolved suite, the models, the baseline and the repeats. */
export function runIdentity(suite: Suite, models: readonly string[], baseline: string | null, repeat: number): string {
  return createHash("sha256")
    .update(JSON.stringify([suite, models, baseline, repeat]))
    .digest("hex");
}

/**
 * Evaluation runs in the control database (freehold.db, migration 2). Each answer is committed as soon as it is
 * scored, so a run killed at any point continues from what was stored.
 */
export class EvalStore {
  constructor(private readonly db: ControlDatabase) {}

  /** The newest unfinished run with this identity, if any. */
  unfinished(identity: string): EvalRun | undefined {
    const row = this.db
      .prepare<[string], RunRow>(
        "SELECT * FROM eval_runs WHERE identity = ? AND finished_ms IS NULL ORDER BY created_ms DESC LIMIT 1",
      )
      .get(identity);
    return row ? toRun(row) : undefined;
  }

  create(suite: Suite, models: string[], baseline: string | null, repeat: number, now = Date.now()): EvalRun {
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
    this.db
      .prepare(
        "INSERT INTO eval_runs (id, identity, suite_name, suite, models, baseline, repeat, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(run.id, run.identity, suite.name, JSON.stringify(suite), JSON.stringify(models), baseline, repeat, now);
    return run;
  }

  get(id: string): EvalRun | undefined {
    const row = this.db.prepare<[string], RunRow>("SELECT * FROM eval_runs WHERE id = ?").get(id);
    return row ? toRun(row) : undefined;
  }

  finish(id: string, now = Date.now()): void {
    this.db.prepare("UPDATE eval_runs SET finished_ms = ? WHERE id = ?").run(now, id);
  }

  save(runId: string, result: EvalResult, now = Date.now()): void {
    this.db
      .prepare(
        `INSERT OR REPLACE INTO eval_results (run_id, model, case_id, repeat, output, error, pass, assertions,
         prompt_tokens, completion_tokens, ttft_ms, duration_ms, cost_usd, served_by, time_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        runId,
        result.model,
        result.caseId,
        result.repeat,
        result.output,
        result.error,
        result.pass ? 1 : 0,
        JSON.stringify(result.assertions),
        result.promptTokens,
        result.completionTokens,
        result.ttftMs,
        result.durationMs,
        result.costUsd,
        result.servedBy ? JSON.stringify(result.servedBy) : null,
        now,
      );
  }

  results(runId: string): EvalResult[] {
    const rows = this.db
      .prepare<[string], Record<string, unknown>>(
        "SELECT * FROM eval_results WHERE run_id = ? ORDER BY model, case_id, repeat",
      )
      .all(runId);
    return rows.map((row) => ({
      model: String(row.model),
      caseId: String(row.case_id),
      repeat: Number(row.repeat),
      output: String(row.output),
      error: row.error === null ? null : String(row.error),
      pass: row.pass === 1,
      assertions: JSON.parse(String(row.assertions)) as AssertionResult[],
      promptTokens: Number(row.prompt_tokens),
      completionTokens: Number(row.completion_tokens),
      ttftMs: row.ttft_ms === null ? null : Number(row.ttft_ms),
      durationMs: Number(row.duration_ms),
      costUsd: row.cost_usd === null ? null : Number(row.cost_usd),
      servedBy: row.served_by === null ? null : (JSON.parse(String(row.served_by)) as ServedBy),
    }));
  }

  reference(runId: string, model: string, caseId: string): string | undefined {
    return this.db
      .prepare<[string, string, string], { output: string }>(
        "SELECT output FROM eval_references WHERE run_id = ? AND model = ? AND case_id = ?",
      )
      .get(runId, model, caseId)?.output;
  }

  saveReference(runId: string, model: string, caseId: string, output: string): void {
    this.db
      .prepare("INSERT OR REPLACE INTO eval_references (run_id, model, case_id, output) VALUES (?, ?, ?, ?)")
      .run(runId, model, caseId, output);
  }

  /** The newest runs, for `freehold eval --list`. */
  list(
    limit = 20,
  ): (Pick<EvalRun, "id" | "models" | "baseline" | "createdMs" | "finishedMs"> & { suite: string; results: number })[] {
    return this.db
      .prepare<[number], Record<string, unknown>>(
        `SELECT r.id, r.suite_name, r.models, r.baseline, r.created_ms, r.finished_ms,
         (SELECT COUNT(*) FROM eval_results e WHERE e.run_id = r.id) AS results
         FROM eval_runs r ORDER BY r.created_ms DESC LIMIT ?`,
      )
      .all(limit)
      .map((row) => ({
        id: String(row.id),
        suite: String(row.suite_name),
        models: JSON.parse(String(row.models)) as string[],
        baseline: row.baseline === null ? null : String(row.baseline),
        createdMs: Number(row.created_ms),
        finishedMs: row.finished_ms === null ? null : Number(row.finished_ms),
        results: Number(row.results),
      }));
  }
}
