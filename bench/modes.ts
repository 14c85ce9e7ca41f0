// npm run bench:modes -- --mode concurrency [--streams 1,2,4,8] [--tokens 64] [--runs 3] [--threads 0,2]
// npm run bench:modes -- --mode multiturn [--turns 10] [--turn-words 60]
//
// Issue 4's benchmarks on the smol135m synthetic model: aggregate decode throughput with N concurrent streams, and
// time to first token over a multi-turn chat (prompt-cache reuse). freehold and (with LLAMA_SERVER) llama-server are
// measured in the same run, interleaved. Progress on stderr, the tables on stdout.
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { prepareFreeholdHome, startFreehold } from "./freehold.js";
import { startLlamaServer } from "./llamaServer.js";
import { installCleanup, stopAll } from "./processes.js";
import { median } from "./report.js";
import type { BenchSystem } from "./system.js";
import { systemLabel } from "./system.js";

const { values } = parseArgs({
  options: {
    mode: { type: "string", default: "concurrency" },
    streams: { type: "string", default: "1,2,4" },
    tokens: { type: "string", default: "64" },
    runs: { type: "string", default: "3" },
    threads: { type: "string", default: "0,2" },
    turns: { type: "string", default: "10" },
    "turn-words": { type: "string", default: "60" },
  },
});

const PER_SLOT_CONTEXT = 2048;
const SLOTS = 4;
const modelPath = join(tmpdir(), "freehold-bench", "smol135m-q8_0-seed1.gguf");
const log = (line: string) => process.stderr.write(`${line}\n`);

async function systems(): Promise<BenchSystem[]> {
  if (!existsSync(modelPath))
    throw new Error(`${modelPath} is missing: run \`npm run bench -- --models smol135m\` once to make it`);
  const home = await prepareFreeholdHome({ smol135m: modelPath });
  const started: BenchSystem[] = [];
  for (const threads of values.threads.split(",").map(Number)) {
    started.push(await startFreehold({ home, model: "smol135m", threads, contextSize: PER_SLOT_CONTEXT }));
    const binary = process.env.LLAMA_SERVER;
    // llama-server's -c is shared by its slots (default 4): the same per-slot context as freehold's.
    if (binary && threads > 0) {
      started.push(await startLlamaServer({ binary, modelPath, threads, contextSize: PER_SLOT_CONTEXT * SLOTS }));
    }
  }
  return started;
}

async function concurrency(list: BenchSystem[]): Promise<void> {
  const streams = values.streams.split(",").map(Number);
  const tokens = Number(values.tokens);
  const runs = Number(values.runs);
  const results = new Map<string, Map<number, { aggregate: number[]; perStream: number[]; ttft: number[] }>>();
  for (const system of list) await system.run("Warm up.", 8);
  for (let run = 0; run < runs; run++) {
    for (const n of streams) {
      for (const system of list) {
        const started = performance.now();
        const samples = await Promise.all(
          Array.from({ length: n }, (_, i) =>
            system.run(
              `${String.fromCharCode(65 + ((run * 8 + i) % 26))}. Once upon a time, a girl named Lily`,
              tokens,
            ),
          ),
        );
        const wall = (performance.now() - started) / 1000;
        const total = samples.reduce((sum, sample) => sum + sample.completionTokens, 0);
        const byStreams = results.get(systemLabel(system)) ?? new Map();
        results.set(systemLabel(system), byStreams);
        const entry = byStreams.get(n) ?? { aggregate: [], perStream: [], ttft: [] };
        byStreams.set(n, entry);
        entry.aggregate.push(total / wall);
        entry.perStream.push(...samples.map((sample) => sample.decodeTokensPerSecond));
        entry.ttft.push(...samples.map((sample) => sample.ttftMs));
        log(`run ${run + 1}/${runs}: ${systemLabel(system)} x${n}: ${(total / wall).toFixed(1)} tok/s aggregate`);
      }
    }
  }
  const percentile = (values: number[], p: number) =>
    [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(p * values.length))]!;
  console.log(
    `\n### smol135m q8_0: ${tokens} tokens per stream, aggregate = all completion tokens / wall time of the batch, median of ${runs}\n`,
  );
  console.log("| system | streams | aggregate tok/s | per-stream tok/s | TTFT p50 ms | TTFT p95 ms | vs 1 stream |");
  console.log("|---|---|---|---|---|---|---|");
  for (const [label, byStreams] of results) {
    const single = median(byStreams.get(1)?.aggregate ?? [Number.NaN]);
    for (const [n, entry] of byStreams) {
      const aggregate = median(entry.aggregate);
      console.log(
        `| ${label} | ${n} | ${aggregate.toFixed(1)} | ${median(entry.perStream).toFixed(1)} | ${percentile(entry.ttft, 0.5).toFixed(0)} | ${percentile(entry.ttft, 0.95).toFixed(0)} | ${(aggregate / single).toFixed(2)}x |`,
      );
    }
  }
}

interface ChatTiming {
  ttftMs: number;
  promptTokens: number;
  cachedTokens: number;
  text: string;
}

async function timedChat(url: string, messages: { role: string; content: string }[]): Promise<ChatTiming> {
  const started = performance.now();
  const response = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "smol135m",
      messages,
      max_tokens: 16,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
      cache_prompt: true,
    }),
  });
  if (!response.ok || !response.body) throw new Error(`chat answered ${response.status}: ${await response.text()}`);
  let ttftMs = 0;
  let text = "";
  let buffer = "";
  let promptTokens = 0;
  let cachedTokens = 0;
  const decoder = new TextDecoder();
  for await (const chunk of response.body) {
    buffer += decoder.decode(chunk as Uint8Array, { stream: true });
    let end = buffer.indexOf("\n\n");
    while (end !== -1) {
      const frame = buffer.slice(0, end).trim();
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
      if (!frame.startsWith("data: ") || frame === "data: [DONE]") continue;
      const data = JSON.parse(frame.slice(6)) as {
        choices?: { delta?: { content?: string } }[];
        usage?: { prompt_tokens: number; prompt_tokens_details?: { cached_tokens?: number } } | null;
        timings?: { cache_n?: number };
      };
      const piece = data.choices?.[0]?.delta?.content;
      if (piece) {
        if (!ttftMs) ttftMs = performance.now() - started;
        text += piece;
      }
      if (data.usage) {
        promptTokens = data.usage.prompt_tokens;
        cachedTokens = data.usage.prompt_tokens_details?.cached_tokens ?? data.timings?.cache_n ?? cachedTokens;
      }
      if (data.timings?.cache_n !== undefined) cachedTokens = data.timings.cache_n;
    }
  }
  return { ttftMs, promptTokens, cachedTokens, text };
}

const WORDS =
  "the girl walked to the park with her dog and they saw a big red ball near the old tree by the river".split(" ");

async function multiturn(list: BenchSystem[]): Promise<void> {
  const turns = Number(values.turns);
  const wordsPerTurn = Number(values["turn-words"]);
  console.log(
    `\n### smol135m q8_0: a ${turns}-turn chat, each turn adding ${wordsPerTurn} words; answers of 16 tokens\n`,
  );
  console.log("| system | turn | prompt tokens | cached | TTFT ms |");
  console.log("|---|---|---|---|---|");
  for (const system of list) {
    if (!system.url) continue;
    await system.run("Warm up.", 8);
    const messages: { role: string; content: string }[] = [];
    const ttfts: number[] = [];
    for (let turn = 1; turn <= turns; turn++) {
      const words = Array.from({ length: wordsPerTurn }, (_, i) => WORDS[(turn * 7 + i) % WORDS.length]);
      messages.push({ role: "user", content: `Turn ${turn}: ${words.join(" ")}.` });
      const timing = await timedChat(system.url, messages);
      messages.push({ role: "assistant", content: timing.text });
      ttfts.push(timing.ttftMs);
      console.log(
        `| ${systemLabel(system)} | ${turn} | ${timing.promptTokens} | ${timing.cachedTokens} | ${timing.ttftMs.toFixed(0)} |`,
      );
    }
    console.log(
      `| ${systemLabel(system)} | turn ${turns} / turn 1 | | | **${(ttfts[turns - 1]! / ttfts[0]!).toFixed(2)}x** |`,
    );
  }
}

installCleanup();
try {
  const list = await systems();
  if (values.mode === "multiturn") await multiturn(list);
  else await concurrency(list);
} finally {
  await stopAll();
}
