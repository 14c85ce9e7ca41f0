// npm run bench -- [--mode single|concurrency|multiturn|gateway] [--models stories,smol135m] [--runs N] [--tokens N]
//                  [--threads 1,2] [--streams 1,2,4,8] [--turns 10] [--turn-tokens 100] [--json]
//
// Speed of freehold's HTTP API, side by side in one run with (when LLAMA_SERVER=/path/to/llama-server is set)
// llama.cpp's llama-server, and in single mode with node-llama-cpp called directly:
// - single (default): one stream at a time, decode tok/s and time to first token (single.ts);
// - concurrency: N streams at once, aggregate and per-stream tok/s, TTFT p50/p95 (concurrency.ts);
// - multiturn: a chat whose turns reuse the prompt cache, TTFT and cached tokens per turn (multiturn.ts).
// Systems are interleaved, so that noise from other work on the machine spreads over all of them.
// Progress goes to stderr and the tables to stdout; with --json, stdout is one JSON document and the tables go to stderr.
import { existsSync } from "node:fs";
import { availableParallelism, cpus, loadavg } from "node:os";
import { benchConcurrency, formatConcurrency } from "./concurrency.js";
import { benchDraft, formatDraft } from "./draft.js";
import { benchGateway, formatGateway } from "./gateway.js";
import { CONTEXT_SIZE, prompt, SLOTS } from "./models.js";
import { benchMultiturn, formatMultiturn } from "./multiturn.js";
import { type Options, parseOptions } from "./options.js";
import { installCleanup, log, stopAll } from "./processes.js";
import { formatModel } from "./report.js";
import { benchSingle } from "./single.js";

async function runModes(options: Options): Promise<{ results: unknown[]; tables: string[] }> {
  const results: unknown[] = [];
  const tables: string[] = [];
  for (const spec of options.models) {
    if (options.mode === "concurrency") {
      const result = await benchConcurrency(spec, options);
      results.push(result);
      tables.push(formatConcurrency(result));
    } else if (options.mode === "multiturn") {
      const result = await benchMultiturn(spec, options);
      results.push(result);
      tables.push(formatMultiturn(result));
    } else if (options.draft) {
      const result = await benchDraft(spec, options.draft, options);
      results.push(result);
      tables.push(formatDraft(result));
    } else {
      const result = await benchSingle(spec, options);
      results.push(result);
      tables.push(formatModel(result));
    }
  }
  return { results, tables };
}

async function main(): Promise<void> {
  installCleanup();
  // The gateway's own overhead needs no model (bench/gateway.ts); its flags are --mode gateway and --json only.
  if (process.argv.includes("gateway")) {
    const result = await benchGateway();
    const table = formatGateway(result);
    if (process.argv.includes("--json")) {
      log(table);
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } else process.stdout.write(`${table}\n`);
    await stopAll();
    return;
  }
  const options = parseOptions();
  if (!options.llamaServer)
    log(
      `LLAMA_SERVER is not set: ${options.mode === "single" ? "comparing with node-llama-cpp only" : "freehold only"}`,
    );
  else if (!existsSync(options.llamaServer)) throw new Error(`LLAMA_SERVER=${options.llamaServer} does not exist`);
  const machine = {
    cpu: cpus()[0]?.model ?? "unknown",
    cores: availableParallelism(),
    node: process.version,
    loadAverageAtStart: loadavg().map((l) => Number(l.toFixed(2))),
  };
  log(
    `${machine.cores} cores (${machine.cpu}), Node ${machine.node}, load average ${machine.loadAverageAtStart.join(" ")}`,
  );
  const { results, tables } = await runModes(options);
  const loadAverageAtEnd = loadavg().map((l) => Number(l.toFixed(2)));
  const summary = [
    `${machine.cores} cores (${machine.cpu}), Node ${machine.node}; load average ${machine.loadAverageAtStart.join(" ")} at start, ${loadAverageAtEnd.join(" ")} at end\n`,
    ...tables,
  ].join("\n");
  if (options.json) {
    // The tables still go to stderr for whoever watches; stdout is one JSON document.
    log(`\n${summary}`);
    const settings = {
      mode: options.mode,
      ...(options.mode === "single"
        ? { prompt: prompt(0), promptNote: "the first letter changes per run (A, B, C, …; Z for the warm-up)" }
        : { slots: SLOTS, llamaServerContext: CONTEXT_SIZE * SLOTS }),
      contextSize: CONTEXT_SIZE,
      threads: options.threads,
      llamaServer: options.llamaServer ?? null,
    };
    process.stdout.write(
      `${JSON.stringify({ machine: { ...machine, loadAverageAtEnd }, settings, models: results }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(summary);
  }
}

main().catch(async (error: unknown) => {
  log(`bench failed: ${(error as Error)?.stack ?? String(error)}`);
  await stopAll();
  process.exit(1);
});
