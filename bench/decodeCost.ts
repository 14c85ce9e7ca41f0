// node --import tsx bench/decodeCost.ts [model.gguf]   (THREADS=n, default 2; RUNS=n, default 3)
//
// A diagnostic for the cost of one llama_decode by the number of tokens it carries (1 and 4 sequences × 1 token, 100
// and 4 × 100 prompt tokens), node-llama-cpp alone: wall time and the process's CPU time around each decode, and
// which ggml CPU backend library was loaded. CPU time is the evidence a busy machine leaves intact: at one thread it
// is the decode's arithmetic; at two, the extra over one thread is barrier spinning. Run it from a tree whose
// node_modules has the OpenMP CPU backend (bench/ompCpuBackend.sh) to compare the two builds under the same load.
import { readFileSync } from "node:fs";
import { loadAverage, loadDiagnosticContext, median, madeUpTokens as tokens } from "./diagnosticContext.js";

const runs = Number(process.env.RUNS ?? 3);
const { threads, context, dispose } = await loadDiagnosticContext();
const libraries = readFileSync("/proc/self/maps", "utf8")
  .split("\n")
  .map((line) => line.split(" ").pop() ?? "")
  .filter((path) => /ggml-cpu|gomp/.test(path));
console.log(`threads ${threads}; loaded: ${[...new Set(libraries)].join(" ")}`);

// Each decode's tokens, wall and CPU milliseconds, through a proxy on the native context (node-llama-cpp 3.21's
// `_ctx`; a diagnostic only, as test/helpers/decodeCounter.ts).
const decodes: { tokens: number; wallMs: number; cpuMs: number }[] = [];
const holder = context as unknown as { _ctx: Record<string, unknown> };
const native = holder._ctx;
holder._ctx = new Proxy(native, {
  get(target, key) {
    const value = target[key as string];
    if (typeof value !== "function") return value;
    const method = value as (...a: unknown[]) => unknown;
    if (key === "initBatch")
      return (size: number) => {
        decodes.push({ tokens: size, wallMs: 0, cpuMs: 0 });
        return method.call(target, size);
      };
    if (key === "decodeBatch")
      return async (...a: unknown[]) => {
        const cpu = process.cpuUsage();
        const started = performance.now();
        try {
          return await method.apply(target, a);
        } finally {
          const used = process.cpuUsage(cpu);
          const last = decodes[decodes.length - 1]!;
          last.wallMs += performance.now() - started;
          last.cpuMs += (used.user + used.system) / 1000;
        }
      };
    return method.bind(target);
  },
});

const sequences = Array.from({ length: 4 }, () => context.getSequence());
const byTokens = new Map<number, { wall: number[]; cpu: number[] }>();
for (let run = 0; run <= runs; run++) {
  for (const sequence of sequences) await sequence.clearHistory();
  decodes.length = 0;
  await sequences[0]!.evaluateWithoutGeneratingNewTokens(tokens(run, 100));
  await Promise.all(sequences.map((s, i) => s.evaluateWithoutGeneratingNewTokens(tokens(run * 10 + i + 1, 100))));
  for (let step = 0; step < 4; step++) await sequences[0]!.evaluateWithoutGeneratingNewTokens(tokens(run + step, 1));
  for (let step = 0; step < 4; step++)
    await Promise.all(sequences.map((s, i) => s.evaluateWithoutGeneratingNewTokens(tokens(run * 5 + i + step, 1))));
  if (run === 0) continue; // warm-up
  for (const decode of decodes) {
    const entry = byTokens.get(decode.tokens) ?? { wall: [], cpu: [] };
    entry.wall.push(decode.wallMs);
    entry.cpu.push(decode.cpuMs);
    byTokens.set(decode.tokens, entry);
  }
}
for (const [count, { wall, cpu }] of [...byTokens].sort((a, b) => a[0] - b[0]))
  console.log(
    `${String(count).padStart(3)} tokens: wall ${median(wall).toFixed(1)} ms, CPU ${median(cpu).toFixed(1)} ms (median of ${wall.length})`,
  );
console.log(`load average ${loadAverage()}`);
await dispose();
