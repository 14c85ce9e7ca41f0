import type { EvalResult } from "./store.js";
import type { EvalSummary, ModelSummary } from "./summary.js";

/**
 * A self-contained HTML report: inline CSS and SVG charts, no scripts, nothing fetched, so it opens offline and
 * can be mailed or attached to a CI run.
 */

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

const palette = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f"];
const color = (index: number) => palette[index % palette.length]!;
const percent = (value: number) => `${(value * 100).toFixed(1)}%`;

export function formatUsd(value: number | null): string {
  if (value === null) return "n/a";
  if (value === 0) return "$0";
  return value >= 0.01 ? `$${value.toFixed(2)}` : `$${value.toPrecision(2)}`;
}

/** Pass rate (with its 95% interval) against cost per 1,000 requests; unpriced models sit in a "no price" column. */
function costChart(models: ModelSummary[]): string {
  const width = 640;
  const height = 320;
  const left = 60;
  const bottom = 40;
  const plotWidth = width - left - 100;
  const plotHeight = height - bottom - 20;
  const costs = models.flatMap((model) => (model.costPer1000 === null ? [] : [model.costPer1000]));
  const positive = costs.filter((cost) => cost > 0);
  // A log scale: local electricity and paid APIs differ by orders of magnitude.
  const low = positive.length ? Math.log10(Math.min(...positive)) - 0.5 : -3;
  const high = positive.length ? Math.log10(Math.max(...positive)) + 0.5 : 1;
  const x = (cost: number | null) =>
    cost === null
      ? left + plotWidth + 60
      : cost <= 0
        ? left
        : left + ((Math.log10(cost) - low) / (high - low)) * plotWidth;
  const y = (rate: number) => 20 + (1 - rate) * plotHeight;
  const parts: string[] = [
    `<svg class="chart" id="cost-chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="pass rate against cost per 1,000 requests">`,
    `<line x1="${left}" y1="${20 + plotHeight}" x2="${left + plotWidth}" y2="${20 + plotHeight}" stroke="#888"/>`,
    `<line x1="${left}" y1="20" x2="${left}" y2="${20 + plotHeight}" stroke="#888"/>`,
  ];
  for (const tick of [0, 0.25, 0.5, 0.75, 1])
    parts.push(
      `<text x="${left - 6}" y="${y(tick) + 4}" text-anchor="end" font-size="11">${tick * 100}%</text>`,
      `<line x1="${left}" y1="${y(tick)}" x2="${left + plotWidth}" y2="${y(tick)}" stroke="#eee"/>`,
    );
  for (let exponent = Math.ceil(low); exponent <= Math.floor(high); exponent++)
    parts.push(
      `<text x="${x(10 ** exponent)}" y="${20 + plotHeight + 16}" text-anchor="middle" font-size="11">${formatUsd(10 ** exponent)}</text>`,
    );
  parts.push(
    `<text x="${left + plotWidth / 2}" y="${height - 4}" text-anchor="middle" font-size="12">cost per 1,000 requests (log scale)</text>`,
  );
  if (models.some((model) => model.costPer1000 === null))
    parts.push(
      `<text x="${left + plotWidth + 60}" y="${20 + plotHeight + 16}" text-anchor="middle" font-size="11">no price</text>`,
    );
  models.forEach((model, index) => {
    const cx = x(model.costPer1000);
    parts.push(
      `<line x1="${cx}" y1="${y(model.interval.low)}" x2="${cx}" y2="${y(model.interval.high)}" stroke="${color(index)}" stroke-width="2"/>`,
      `<circle class="point" cx="${cx}" cy="${y(model.passRate)}" r="6" fill="${color(index)}"><title>${escapeHtml(model.model)}: ${percent(model.passRate)} (95% CI ${percent(model.interval.low)}–${percent(model.interval.high)}), ${formatUsd(model.costPer1000)} per 1,000</title></circle>`,
      `<text x="${cx + 9}" y="${y(model.passRate) - 8}" font-size="12" fill="${color(index)}">${escapeHtml(model.model)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("");
}

/** Every answer's latency as a dot, with the median and 95th percentile marked, one row per model. */
function latencyChart(models: ModelSummary[], results: readonly EvalResult[]): string {
  const rowHeight = 36;
  const left = 160;
  const width = 640;
  const plotWidth = width - left - 20;
  const height = models.length * rowHeight + 50;
  const durations = results.map((result) => result.durationMs);
  const max = Math.max(1, ...durations) * 1.05;
  const x = (ms: number) => left + (ms / max) * plotWidth;
  const parts = [
    `<svg class="chart" id="latency-chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="latency per answer">`,
  ];
  models.forEach((model, index) => {
    const cy = 20 + index * rowHeight + rowHeight / 2;
    parts.push(
      `<text x="${left - 8}" y="${cy + 4}" text-anchor="end" font-size="12">${escapeHtml(model.model)}</text>`,
      `<line x1="${left}" y1="${cy}" x2="${left + plotWidth}" y2="${cy}" stroke="#eee"/>`,
    );
    for (const result of results.filter((entry) => entry.model === model.model))
      parts.push(
        `<circle class="latency" cx="${x(result.durationMs).toFixed(1)}" cy="${cy}" r="3" fill="${color(index)}" fill-opacity="0.5"><title>${escapeHtml(result.caseId)}: ${Math.round(result.durationMs)} ms</title></circle>`,
      );
    for (const [label, value] of [
      ["p50", model.latencyMs.p50],
      ["p95", model.latencyMs.p95],
    ] as const)
      if (value !== null)
        parts.push(
          `<line x1="${x(value)}" y1="${cy - 10}" x2="${x(value)}" y2="${cy + 10}" stroke="#111" stroke-width="${label === "p50" ? 2 : 1}"><title>${label} ${Math.round(value)} ms</title></line>`,
        );
  });
  const axis = 20 + models.length * rowHeight;
  parts.push(`<line x1="${left}" y1="${axis}" x2="${left + plotWidth}" y2="${axis}" stroke="#888"/>`);
  for (let i = 0; i <= 4; i++)
    parts.push(
      `<text x="${x((max * i) / 4)}" y="${axis + 16}" text-anchor="middle" font-size="11">${Math.round((max * i) / 4)} ms</text>`,
    );
  parts.push("</svg>");
  return parts.join("");
}

function summaryTable(summary: EvalSummary): string {
  const head = [
    "model",
    "verdict",
    "pass",
    "95% CI",
    "p50 ms",
    "p95 ms",
    "TTFT p50",
    "tok/s",
    "per 1,000",
    "vs baseline",
  ];
  const rows = summary.models.map((model) => {
    const cells = [
      escapeHtml(model.model),
      `<span class="verdict ${model.verdict.replaceAll(" ", "-")}">${model.verdict}</span>`,
      `${model.passes}/${model.answers} (${percent(model.passRate)})`,
      `${percent(model.interval.low)}–${percent(model.interval.high)}`,
      model.latencyMs.p50 === null ? "" : String(Math.round(model.latencyMs.p50)),
      model.latencyMs.p95 === null ? "" : String(Math.round(model.latencyMs.p95)),
      model.ttftMs.p50 === null ? "" : String(Math.round(model.ttftMs.p50)),
      model.tokensPerSecond === null ? "" : model.tokensPerSecond.toFixed(0),
      formatUsd(model.costPer1000),
      model.comparison
        ? `p = ${model.comparison.pValue.toFixed(4)} (${model.comparison.candidateOnly} better, ${model.comparison.baselineOnly} worse)`
        : "",
    ];
    return `<tr><td>${cells.join("</td><td>")}</td></tr>`;
  });
  return `<table class="summary"><thead><tr><th>${head.join("</th><th>")}</th></tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function assertionTable(summary: EvalSummary): string {
  const types = [...new Set(summary.models.flatMap((model) => Object.keys(model.assertions)))].sort();
  const rows = summary.models.map(
    (model) =>
      `<tr><td>${escapeHtml(model.model)}</td>${types
        .map((type) => {
          const entry = model.assertions[type];
          return `<td>${entry ? `${entry.passes}/${entry.total}` : ""}</td>`;
        })
        .join("")}</tr>`,
  );
  return `<table><thead><tr><th>model</th>${types.map((type) => `<th>${escapeHtml(type)}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

function caseGrid(summary: EvalSummary): string {
  const models = summary.models.map((model) => model.model);
  const rows = summary.cases.map((item) => {
    const cells = models.map((model) => {
      const cell = item.models[model];
      if (!cell || cell.total === 0) return `<td class="cell missing">not run</td>`;
      const state = cell.passes === cell.total ? "pass" : cell.passes === 0 ? "fail" : "mixed";
      const failures = cell.failures.map((failure) => `<li>${escapeHtml(failure)}</li>`).join("");
      return `<td class="cell ${state}"><b>${cell.passes}/${cell.total}</b><pre>${escapeHtml(cell.output)}</pre>${failures ? `<ul>${failures}</ul>` : ""}</td>`;
    });
    return `<tr><th>${escapeHtml(item.caseId)}</th>${cells.join("")}</tr>`;
  });
  return `<table class="grid"><thead><tr><th>case</th>${models.map((model) => `<th>${escapeHtml(model)}</th>`).join("")}</tr></thead><tbody>${rows.join("")}</tbody></table>`;
}

/** The whole report as one HTML document. */
export function renderHtmlReport(summary: EvalSummary, results: readonly EvalResult[]): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(summary.suite)} — freehold eval</title>
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#111;max-width:1400px}
table{border-collapse:collapse;margin:8px 0 24px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
.verdict{font-weight:600}.good-enough{color:#15803d}.not-good-enough{color:#b91c1c}.baseline{color:#555}
.grid pre{white-space:pre-wrap;max-width:360px;margin:4px 0;font-size:12px}.grid ul{margin:0;padding-left:16px;font-size:12px;color:#b91c1c}
.pass{background:#f0fdf4}.fail{background:#fef2f2}.mixed{background:#fefce8}.missing{color:#888}
.charts{display:flex;flex-wrap:wrap;gap:24px}.chart{background:#fff;border:1px solid #eee}
</style></head><body>
<h1>${escapeHtml(summary.suite)}</h1>
<p>Run <code>${escapeHtml(summary.runId)}</code>: threshold ${percent(summary.threshold)}, ${summary.repeat} repeat${summary.repeat === 1 ? "" : "s"} per case${summary.baseline ? `, baseline <b>${escapeHtml(summary.baseline)}</b>` : ""}${summary.complete ? "" : " — <b>incomplete</b> (rerun the command to continue)"}.
A model is <i>good enough</i> when its pass rate reaches the threshold and is not significantly below the baseline (McNemar's exact test over cases, 5%).</p>
${summaryTable(summary)}
<div class="charts"><figure><figcaption>Pass rate (95% interval) against cost</figcaption>${costChart(summary.models)}</figure>
<figure><figcaption>Latency per answer (bars: p50, p95)</figcaption>${latencyChart(summary.models, results)}</figure></div>
<h2>Assertions passed</h2>${assertionTable(summary)}
<h2>Cases</h2>${caseGrid(summary)}
</body></html>
`;
}
