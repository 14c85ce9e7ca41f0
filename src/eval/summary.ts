import { mcnemar, type PairedComparison, percentile, wilsonInterval } from "./stats.js";
import type { EvalResult, EvalRun } from "./store.js";

export interface ModelSummary {
  model: string;
  baseline: boolean;
  answers: number;
  passes: number;
  errors: number;
  passRate: number;
  /** Wilson 95% interval of the pass rate. */
  interval: { low: number; high: number };
  /** Per assertion type: how many of its checks passed. */
  assertions: Record<string, { passes: number; total: number }>;
  latencyMs: { p50: number | null; p95: number | null };
  ttftMs: { p50: number | null; p95: number | null };
  /** Generated tokens per second of generation (after the first token). */
  tokensPerSecond: number | null;
  /** Mean cost per request × 1,000; null when some answers have no price. */
  costPer1000: number | null;
  /** Against the baseline, paired over cases (a case passes when more than half its repeats do). */
  comparison: (PairedComparison & { cases: number }) | null;
  verdict: "baseline" | "good enough" | "not good enough";
  /** Why, in words. */
  reason: string;
}

export interface CaseOutcome {
  caseId: string;
  /** Per model: passes out of repeats, the first answer, and what failed. */
  models: Record<string, { passes: number; total: number; output: string; failures: string[] }>;
}

export interface EvalSummary {
  runId: string;
  suite: string;
  threshold: number;
  repeat: number;
  baseline: string | null;
  complete: boolean;
  models: ModelSummary[];
  cases: CaseOutcome[];
}

function casePasses(results: EvalResult[]): Map<string, boolean> {
  const byCase = new Map<string, { passes: number; total: number }>();
  for (const result of results) {
    const entry = byCase.get(result.caseId) ?? { passes: 0, total: 0 };
    entry.total++;
    if (result.pass) entry.passes++;
    byCase.set(result.caseId, entry);
  }
  return new Map([...byCase].map(([id, entry]) => [id, entry.passes * 2 > entry.total]));
}

function round(value: number | null, digits = 6): number | null {
  return value === null ? null : Math.round(value * 10 ** digits) / 10 ** digits;
}

/** Everything the report shows, computed from a run's stored results (so a resumed run reports the same). */
export function summarize(run: EvalRun, results: readonly EvalResult[]): EvalSummary {
  const models = run.baseline && !run.models.includes(run.baseline) ? [run.baseline, ...run.models] : run.models;
  const byModel = new Map(models.map((model) => [model, results.filter((result) => result.model === model)]));
  const baselineCases = run.baseline ? casePasses(byModel.get(run.baseline) ?? []) : null;
  const summaries = models.map((model): ModelSummary => {
    const rows = byModel.get(model) ?? [];
    const passes = rows.filter((row) => row.pass).length;
    const assertions: ModelSummary["assertions"] = {};
    for (const row of rows)
      for (const entry of row.assertions) {
        const slot = assertions[entry.type] ?? { passes: 0, total: 0 };
        assertions[entry.type] = slot;
        slot.total++;
        if (entry.pass) slot.passes++;
      }
    const answered = rows.filter((row) => row.error === null || row.output !== "");
    const durations = answered.map((row) => row.durationMs);
    const ttfts = answered.flatMap((row) => (row.ttftMs === null ? [] : [row.ttftMs]));
    const generated = answered.reduce((total, row) => total + row.completionTokens, 0);
    const generating = answered.reduce((total, row) => total + (row.durationMs - (row.ttftMs ?? 0)), 0);
    const priced = answered.filter((row) => row.costUsd !== null);
    const costPer1000 =
      answered.length > 0 && priced.length === answered.length
        ? (priced.reduce((total, row) => total + row.costUsd!, 0) / priced.length) * 1000
        : null;
    const passRate = rows.length ? passes / rows.length : 0;
    let comparison: ModelSummary["comparison"] = null;
    if (baselineCases && model !== run.baseline) {
      const mine = casePasses(rows);
      const pairs = [...mine].flatMap(([id, pass]) =>
        baselineCases.has(id) ? [{ candidate: pass, baseline: baselineCases.get(id)! }] : [],
      );
      comparison = { ...mcnemar(pairs), cases: pairs.length };
    }
    const isBaseline = model === run.baseline;
    const enough = passRate >= run.suite.threshold;
    const worse = comparison?.significantlyWorse === true;
    const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
    const reason = isBaseline
      ? `the baseline: ${percent(passRate)} pass`
      : !enough
        ? `pass rate ${percent(passRate)} is below the threshold ${percent(run.suite.threshold)}`
        : worse
          ? `significantly below the baseline (McNemar p = ${comparison!.pValue.toFixed(4)})`
          : `pass rate ${percent(passRate)} ≥ ${percent(run.suite.threshold)}${comparison ? `, not significantly below the baseline (p = ${comparison.pValue.toFixed(4)})` : ""}`;
    return {
      model,
      baseline: isBaseline,
      answers: rows.length,
      passes,
      errors: rows.filter((row) => row.error !== null).length,
      passRate,
      interval: wilsonInterval(passes, rows.length),
      assertions,
      latencyMs: { p50: round(percentile(durations, 50), 3), p95: round(percentile(durations, 95), 3) },
      ttftMs: { p50: round(percentile(ttfts, 50), 3), p95: round(percentile(ttfts, 95), 3) },
      tokensPerSecond: generating > 0 ? round(generated / (generating / 1000), 3) : null,
      costPer1000: round(costPer1000, 9),
      comparison,
      verdict: isBaseline ? "baseline" : enough && !worse ? "good enough" : "not good enough",
      reason,
    };
  });
  const cases: CaseOutcome[] = run.suite.cases.map((item) => ({
    caseId: item.id,
    models: Object.fromEntries(
      models.map((model) => {
        const rows = results.filter((row) => row.model === model && row.caseId === item.id);
        const first = rows.find((row) => row.repeat === 0) ?? rows[0];
        const failures = [
          ...new Set(
            rows.flatMap((row) => [
              ...(row.error ? [row.error] : []),
              ...row.assertions
                .filter((entry) => !entry.pass)
                .map((entry) => `${entry.type}: ${entry.detail ?? "failed"}`),
            ]),
          ),
        ];
        return [
          model,
          { passes: rows.filter((row) => row.pass).length, total: rows.length, output: first?.output ?? "", failures },
        ];
      }),
    ),
  }));
  return {
    runId: run.id,
    suite: run.suite.name,
    threshold: run.suite.threshold,
    repeat: run.repeat,
    baseline: run.baseline,
    complete: results.length === run.suite.cases.length * run.repeat * models.length,
    models: summaries,
    cases,
  };
}
