import { toCsv } from "../control/usageReport.js";
import type { EvalResult } from "./store.js";
import type { EvalSummary } from "./summary.js";

/**
 * Machine-readable results for CI: JUnit XML (what Jenkins, GitLab, GitHub test reporters and Azure read) and CSV
 * (one row per answer, for a spreadsheet or pandas).
 */

function xml(text: string): string {
  // XML 1.0 cannot carry most control characters even escaped; a model's answer may contain them.
  return text
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, "\uFFFD")
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;");
}

const seconds = (ms: number) => (ms / 1000).toFixed(3);

interface CaseVerdict {
  caseId: string;
  time: number;
  /** null: passed. */
  failure: { kind: "failure" | "error"; message: string; detail: string } | null;
  output: string;
}

/**
 * One verdict per case and model. A case passes when more than half its repeats pass (as the baseline comparison
 * counts it). It is an `error` (not a `failure`) when every failing repeat failed to answer at all: a provider that
 * was down says nothing about the model's quality.
 */
function caseVerdicts(summary: EvalSummary, results: readonly EvalResult[], model: string): CaseVerdict[] {
  return summary.cases.map((item) => {
    const rows = results.filter((row) => row.model === model && row.caseId === item.caseId);
    const outcome = item.models[model];
    const passes = rows.filter((row) => row.pass).length;
    const time = rows.reduce((total, row) => total + row.durationMs, 0);
    const output = outcome?.output ?? "";
    if (rows.length > 0 && passes * 2 > rows.length) return { caseId: item.caseId, time, failure: null, output };
    const failing = rows.filter((row) => !row.pass);
    const onlyErrors = failing.length > 0 && failing.every((row) => row.error !== null);
    const reasons = outcome?.failures ?? [];
    const message =
      rows.length === 0
        ? "not run (the run was incomplete)"
        : `${passes}/${rows.length} repeats passed: ${reasons[0] ?? "failed"}`;
    return {
      caseId: item.caseId,
      time,
      failure: { kind: onlyErrors ? "error" : "failure", message, detail: reasons.join("\n") },
      output,
    };
  });
}

/** JUnit XML: a testsuite per model, a testcase per eval case, failures carrying what failed. */
export function renderJunit(summary: EvalSummary, results: readonly EvalResult[]): string {
  const suites = summary.models.map((model) => {
    const verdicts = caseVerdicts(summary, results, model.model);
    const failures = verdicts.filter((entry) => entry.failure?.kind === "failure").length;
    const errors = verdicts.filter((entry) => entry.failure?.kind === "error").length;
    const time = verdicts.reduce((total, entry) => total + entry.time, 0);
    const className = `${summary.suite}.${model.model}`;
    const cases = verdicts.map((entry) => {
      const open = `    <testcase classname="${xml(className)}" name="${xml(entry.caseId)}" time="${seconds(entry.time)}"`;
      const out = entry.output ? `\n      <system-out>${xml(entry.output)}</system-out>` : "";
      if (!entry.failure) return `${open}>${out ? `${out}\n    ` : ""}</testcase>`;
      const { kind, message, detail } = entry.failure;
      return `${open}>\n      <${kind} message="${xml(message)}" type="${kind === "error" ? "answer-error" : "assertion"}">${xml(detail)}</${kind}>${out}\n    </testcase>`;
    });
    const properties = [
      ["model", model.model],
      ["verdict", model.verdict],
      ["passRate", String(model.passRate)],
      ["threshold", String(summary.threshold)],
      ["reason", model.reason],
      ["runId", summary.runId],
    ]
      .map(([name, value]) => `      <property name="${name}" value="${xml(value!)}"/>`)
      .join("\n");
    return [
      `  <testsuite name="${xml(className)}" tests="${verdicts.length}" failures="${failures}" errors="${errors}" skipped="0" time="${seconds(time)}">`,
      `    <properties>\n${properties}\n    </properties>`,
      ...cases,
      "  </testsuite>",
    ].join("\n");
  });
  const count = (pattern: RegExp) => suites.reduce((total, text) => total + (text.match(pattern)?.length ?? 0), 0);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${xml(summary.suite)}" tests="${count(/<testcase /g)}" failures="${count(/<failure /g)}" errors="${count(/<error /g)}">`,
    ...suites,
    "</testsuites>",
    "",
  ].join("\n");
}

export const csvHead = [
  "run_id",
  "suite",
  "model",
  "case",
  "repeat",
  "pass",
  "failures",
  "error",
  "prompt_tokens",
  "completion_tokens",
  "ttft_ms",
  "duration_ms",
  "cost_usd",
  "served_by",
  "output",
];

/** One row per answer (model × case × repeat), in suite order. */
export function renderCsv(summary: EvalSummary, results: readonly EvalResult[]): string {
  const order = new Map(summary.cases.map((item, index) => [item.caseId, index]));
  const models = new Map(summary.models.map((model, index) => [model.model, index]));
  const rows = [...results]
    .sort(
      (a, b) =>
        (models.get(a.model) ?? 0) - (models.get(b.model) ?? 0) ||
        (order.get(a.caseId) ?? 0) - (order.get(b.caseId) ?? 0) ||
        a.repeat - b.repeat,
    )
    .map((row) => [
      summary.runId,
      summary.suite,
      row.model,
      row.caseId,
      String(row.repeat),
      row.pass ? "true" : "false",
      row.assertions
        .filter((entry) => !entry.pass)
        .map((entry) => `${entry.type}: ${entry.detail ?? "failed"}`)
        .join("; "),
      row.error ?? "",
      String(row.promptTokens),
      String(row.completionTokens),
      row.ttftMs === null ? "" : String(Math.round(row.ttftMs)),
      String(Math.round(row.durationMs)),
      row.costUsd === null ? "" : String(row.costUsd),
      row.servedBy ? `${row.servedBy.provider}/${row.servedBy.model}` : "",
      row.output,
    ]);
  return toCsv(csvHead, rows);
}
