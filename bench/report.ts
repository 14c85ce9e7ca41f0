// Medians, ratios and the Markdown tables the benchmark prints.
import type { Sample } from "./sse.js";
import type { Engine } from "./system.js";

export interface Spread {
  median: number;
  min: number;
  max: number;
}

export interface SystemResult {
  label: string;
  engine: Engine;
  requested: number | "auto";
  threads: number | undefined;
  decodeTokensPerSecond: Spread;
  ttftMs: Spread;
  samples: Sample[];
}

export interface Ratio {
  name: string;
  numerator: string;
  denominator: string;
  /** numerator / denominator of median decode tokens/s (≥ 1 means the numerator is at least as fast). */
  decode: number;
  /** numerator / denominator of median TTFT (≤ 1 means the numerator answers at least as soon). */
  ttft: number;
}

export interface ModelResult {
  model: string;
  path: string;
  tokens: number;
  runs: number;
  promptTokens: number | undefined;
  systems: SystemResult[];
  ratios: Ratio[];
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Nearest-rank percentile (p in 0–1): the smallest value with at least p of the values at or below it. */
export function percentile(values: number[], p: number): number {
  const sorted = values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

export function spread(values: number[]): Spread {
  const valid = values.filter((v) => !Number.isNaN(v));
  return { median: median(valid), min: Math.min(...valid), max: Math.max(...valid) };
}

/** The fastest (by median decode tokens/s) of an engine's configurations. */
export function best(systems: SystemResult[], engine: Engine): SystemResult | undefined {
  return systems
    .filter((s) => s.engine === engine)
    .reduce<SystemResult | undefined>(
      (top, s) => (!top || s.decodeTokensPerSecond.median > top.decodeTokensPerSecond.median ? s : top),
      undefined,
    );
}

function ratio(name: string, a: SystemResult | undefined, b: SystemResult | undefined): Ratio[] {
  if (!a || !b) return [];
  return [
    {
      name,
      numerator: a.label,
      denominator: b.label,
      decode: a.decodeTokensPerSecond.median / b.decodeTokensPerSecond.median,
      ttft: a.ttftMs.median / b.ttftMs.median,
    },
  ];
}

export function ratios(systems: SystemResult[]): Ratio[] {
  const freehold = best(systems, "freehold");
  const auto = systems.find((s) => s.engine === "freehold" && s.requested === "auto");
  const server = best(systems, "llama-server");
  const direct = best(systems, "node-llama-cpp");
  return [
    // Issue 15: freehold on its llama-server engine / the same binary run directly, same threads (target ≥ 0.97×).
    ...systems
      .filter((s) => s.engine === "freehold/llama-server")
      .flatMap((s) =>
        ratio(
          `freehold on llama-server / llama-server, ${s.requested} thread${s.requested === 1 ? "" : "s"} each`,
          s,
          systems.find((o) => o.engine === "llama-server" && o.requested === s.requested),
        ),
      ),
    ...ratio("freehold best / llama-server best", freehold, server),
    ...ratio("freehold auto / llama-server best", auto, server),
    ...ratio("freehold best / node-llama-cpp best", freehold, direct),
    ...ratio("node-llama-cpp best / llama-server best", direct, server),
    // The same thread count on both sides: separates thread-count effects from per-token and per-request costs.
    ...systems
      .filter((s) => s.engine === "freehold" && typeof s.requested === "number")
      .flatMap((s) =>
        ratio(
          `freehold / llama-server, ${s.requested} thread${s.requested === 1 ? "" : "s"} each`,
          s,
          systems.find((o) => o.engine === "llama-server" && o.requested === s.requested),
        ),
      ),
  ];
}

export function number(value: number): string {
  if (Number.isNaN(value)) return "n/a";
  if (value >= 100) return Math.round(value).toLocaleString("en-US");
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

export function range(s: Spread): string {
  return `${number(s.median)} (${number(s.min)}–${number(s.max)})`;
}

export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(head), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}

export function formatModel(result: ModelResult): string {
  const title = `### ${result.model}: ${result.tokens} tokens, ${result.promptTokens ?? "?"}-token prompt, median of ${result.runs} run${result.runs === 1 ? "" : "s"} (min–max)`;
  const systems = table(
    ["system", "threads", "decode tok/s", "TTFT ms"],
    result.systems.map((s) => [
      s.label,
      s.threads === undefined ? "?" : String(s.threads),
      range(s.decodeTokensPerSecond),
      range(s.ttftMs),
    ]),
  );
  const ratioTable = table(
    ["ratio", "systems", "decode tok/s", "TTFT"],
    result.ratios.map((r) => [
      r.name,
      `${r.numerator} / ${r.denominator}`,
      `${r.decode.toFixed(2)}×`,
      `${r.ttft.toFixed(2)}×`,
    ]),
  );
  return `${title}\n\n${systems}\n\n${ratioTable}\n`;
}
