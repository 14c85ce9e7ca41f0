// Concurrency mode: N streaming /v1/completions requests at once (distinct prompts, EOS ignored, the same number
// of tokens each), for each N in --streams, systems interleaved with the order rotating each run.
//
// aggregate tok/s = all completion tokens of the batch / (arrival of the batch's last text chunk − sending of its
// first request); per-stream tok/s = one stream's (tokens − 1) / (its last chunk − its first); TTFT = sending a
// request → its first non-empty text chunk (nearest-rank p50/p95 over every stream of every run).
import { distinctPrompt, type ModelSpec } from "./models.js";
import type { Options } from "./options.js";
import { log } from "./processes.js";
import { median, number, percentile, range, type Spread, spread, table } from "./report.js";
import { withServers } from "./servers.js";
import type { Sample } from "./sse.js";
import { type BenchSystem, type Engine, systemLabel } from "./system.js";

export interface ConcurrencyRow {
  label: string;
  engine: Engine;
  threads: number | undefined;
  streams: number;
  aggregateTokensPerSecond: Spread;
  perStreamTokensPerSecond: Spread;
  ttftP50Ms: number;
  ttftP95Ms: number;
  /** Median aggregate at this many streams / median aggregate at one stream. */
  vsOneStream: number;
  batches: { aggregateTokensPerSecond: number; wallMs: number; samples: Sample[] }[];
}

export interface ConcurrencyRatio {
  name: string;
  systems: string;
  value: number;
  target: string;
}

export interface ConcurrencyResult {
  mode: "concurrency";
  model: string;
  tokens: number;
  runs: number;
  promptTokens: number | undefined;
  rows: ConcurrencyRow[];
  ratios: ConcurrencyRatio[];
}

/** Sends `prompts` to `system` at once; the batch's aggregate rate. */
async function batch(system: BenchSystem, prompts: string[], tokens: number) {
  const started = performance.now();
  const samples = await Promise.all(prompts.map((p) => system.run(p, tokens)));
  const lastText = Math.max(...samples.map((s) => s.lastTextAt ?? Number.NaN));
  const total = samples.reduce((sum, s) => sum + s.completionTokens, 0);
  for (const s of samples) {
    if (s.completionTokens !== tokens)
      log(`warning: ${systemLabel(system)} generated ${s.completionTokens} tokens, not ${tokens}`);
    if ((s.cachedTokens ?? 0) > 3)
      log(`warning: ${systemLabel(system)} reused ${s.cachedTokens} cached prompt tokens: its TTFT is not cold`);
  }
  const wallMs = lastText - started;
  return { aggregateTokensPerSecond: (total * 1000) / wallMs, wallMs, samples };
}

export async function benchConcurrency(spec: ModelSpec, options: Options): Promise<ConcurrencyResult> {
  const tokens = options.tokens ?? 64;
  const runs = options.runs ?? 3;
  const streams = options.streams;
  return withServers(spec, options, async (systems) => {
    const batches = new Map<BenchSystem, Map<number, ConcurrencyRow["batches"]>>(
      systems.map((s) => [s, new Map(streams.map((n) => [n, []]))]),
    );
    let next = 0; // prompt index: every system gets the same prompts in the same batch
    for (let run = 0; run < runs; run++) {
      for (const n of streams) {
        const prompts = Array.from({ length: n }, () => distinctPrompt(next++));
        const order = systems.map((_, i) => systems[(i + run + n) % systems.length]!);
        for (const system of order) {
          const result = await batch(system, prompts, tokens);
          batches.get(system)!.get(n)!.push(result);
          log(
            `${spec.name} run ${run + 1}/${runs} ${systemLabel(system)} ×${n}: ${result.aggregateTokensPerSecond.toFixed(1)} tok/s aggregate, TTFT ${result.samples.map((s) => s.ttftMs.toFixed(0)).join("/")} ms`,
          );
        }
      }
    }
    const rows: ConcurrencyRow[] = systems.flatMap((system) => {
      const byStreams = batches.get(system)!;
      const one = median((byStreams.get(1) ?? []).map((b) => b.aggregateTokensPerSecond));
      return streams.map((n) => {
        const list = byStreams.get(n)!;
        const samples = list.flatMap((b) => b.samples);
        const aggregate = spread(list.map((b) => b.aggregateTokensPerSecond));
        return {
          label: systemLabel(system),
          engine: system.engine,
          threads: system.threads,
          streams: n,
          aggregateTokensPerSecond: aggregate,
          perStreamTokensPerSecond: spread(samples.map((s) => s.decodeTokensPerSecond)),
          ttftP50Ms: percentile(
            samples.map((s) => s.ttftMs),
            0.5,
          ),
          ttftP95Ms: percentile(
            samples.map((s) => s.ttftMs),
            0.95,
          ),
          vsOneStream: aggregate.median / one,
          batches: list,
        };
      });
    });
    const promptTokens = rows[0]?.batches[0]?.samples[0]?.promptTokens;
    return { mode: "concurrency", model: spec.name, tokens, runs, promptTokens, rows, ratios: concurrencyRatios(rows) };
  });
}

/** The ratios at 4 streams (or the most streams measured, if not 4). */
function concurrencyRatios(rows: ConcurrencyRow[]): ConcurrencyRatio[] {
  const counts = [...new Set(rows.map((r) => r.streams))];
  const n = counts.includes(4) ? 4 : Math.max(...counts);
  const at = rows.filter((r) => r.streams === n);
  const rate = (r: ConcurrencyRow) => r.aggregateTokensPerSecond.median;
  const best = (engine: Engine) =>
    at
      .filter((r) => r.engine === engine)
      .reduce<ConcurrencyRow | undefined>((a, r) => (!a || rate(r) > rate(a) ? r : a), undefined);
  const ratios: ConcurrencyRatio[] = at.map((r) => ({
    name: `${n} streams / 1 stream`,
    systems: r.label,
    value: r.vsOneStream,
    target: r.engine === "freehold" ? "≥ 1.3×" : "(reference)",
  }));
  const server = best("llama-server");
  const pair = (name: string, a: ConcurrencyRow | undefined, b: ConcurrencyRow | undefined) =>
    a && b
      ? [
          {
            name: `${name}, ${n} streams`,
            systems: `${a.label} / ${b.label}`,
            value: rate(a) / rate(b),
            target: "≥ 0.95×",
          },
        ]
      : [];
  // Issue 14's targets for freehold at its defaults against llama-server at one stream: decode and TTFT.
  const defaultsAlone = rows.find((r) => r.streams === 1 && r.label === "freehold auto");
  const serverAlone = rows
    .filter((r) => r.streams === 1 && r.engine === "llama-server")
    .reduce<ConcurrencyRow | undefined>((a, r) => (!a || rate(r) > rate(a) ? r : a), undefined);
  const oneStream: ConcurrencyRatio[] =
    defaultsAlone && serverAlone && n !== 1
      ? [
          {
            name: "freehold auto / llama-server best, 1 stream",
            systems: `${defaultsAlone.label} / ${serverAlone.label}`,
            value: rate(defaultsAlone) / rate(serverAlone),
            target: "≥ 0.95×",
          },
          {
            name: "TTFT p50 freehold auto / llama-server, 1 stream",
            systems: `${defaultsAlone.label} / ${serverAlone.label}`,
            value: defaultsAlone.ttftP50Ms / serverAlone.ttftP50Ms,
            target: "≤ 1.1×",
          },
        ]
      : [];
  // Issue 15: freehold on its llama-server engine / the same binary run directly, same threads, at every stream count.
  const engineRatios = counts.flatMap((streams) =>
    rows
      .filter((r) => r.engine === "freehold/llama-server" && r.streams === streams)
      .flatMap((r) => {
        const direct = rows.find(
          (o) => o.engine === "llama-server" && o.threads === r.threads && o.streams === streams,
        );
        return direct
          ? [
              {
                name: `freehold on llama-server / llama-server, ${r.threads} thread${r.threads === 1 ? "" : "s"}, ${streams} stream${streams === 1 ? "" : "s"}`,
                systems: `${r.label} / ${direct.label}`,
                value: rate(r) / rate(direct),
                target: "≥ 0.97×",
              },
            ]
          : [];
      }),
  );
  return [
    ...engineRatios,
    ...oneStream,
    ...ratios,
    ...pair(
      "freehold auto / llama-server best",
      at.find((r) => r.label === "freehold auto"),
      server,
    ),
    ...pair("freehold best / llama-server best", best("freehold"), server),
    // The same thread count on both sides.
    ...at
      .filter((r) => r.engine === "freehold")
      .flatMap((r) =>
        pair(
          `freehold / llama-server, ${r.threads} thread${r.threads === 1 ? "" : "s"} each`,
          r,
          at.find((o) => o.engine === "llama-server" && o.threads === r.threads),
        ),
      ),
  ];
}

export function formatConcurrency(result: ConcurrencyResult): string {
  const title = `### ${result.model}: ${result.tokens} tokens per stream, ${result.promptTokens ?? "?"}-token prompts, median of ${result.runs} runs (min–max)`;
  const rows = table(
    [
      "system",
      "threads",
      "streams",
      "aggregate tok/s",
      "per-stream tok/s",
      "TTFT p50 ms",
      "TTFT p95 ms",
      "vs 1 stream",
    ],
    result.rows.map((r) => [
      r.label,
      r.threads === undefined ? "?" : String(r.threads),
      String(r.streams),
      range(r.aggregateTokensPerSecond),
      number(r.perStreamTokensPerSecond.median),
      number(r.ttftP50Ms),
      number(r.ttftP95Ms),
      `${r.vsOneStream.toFixed(2)}×`,
    ]),
  );
  const ratios = table(
    ["ratio of aggregate tok/s", "systems", "value", "target"],
    result.ratios.map((r) => [r.name, r.systems, `${r.value.toFixed(2)}×`, r.target]),
  );
  return `${title}\n\n${rows}\n\n${ratios}\n`;
}
