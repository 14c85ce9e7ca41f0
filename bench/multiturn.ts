// Multi-turn mode: a chat of --turns turns over streamed /v1/chat/completions, each turn adding a user message of
// about --turn-tokens tokens (varied lowercase words) and appending the assistant's answer (--tokens, EOS ignored,
// temperature 0) to the history. Each system keeps its own history; systems are interleaved turn by turn. What it
// shows: how TTFT grows with the conversation when the server reuses the cached prefix of the previous turns.
import { prng } from "../src/gguf/synthWeights.js";
import type { ModelSpec } from "./models.js";
import type { Options } from "./options.js";
import { log } from "./processes.js";
import { median, number, range, type Spread, spread, table } from "./report.js";
import { withServers } from "./servers.js";
import type { Sample } from "./sse.js";
import { type BenchSystem, type ChatMessage, type Engine, systemLabel } from "./system.js";

const WORDS = `the a and to of in on with for at by from up down over under after before near far into out about
girl boy dog cat bird fish tree house garden park river sea hill road town school book ball box cake apple flower sun
moon star rain snow wind cloud light day night morning evening friend mother father sister brother teacher baker
farmer king queen little big small old young happy sad kind brave quiet loud warm cold bright dark green red blue
yellow soft round fast slow walked ran jumped played looked saw found made gave took told asked said sang laughed
smiled climbed opened closed wanted liked loved helped carried dropped picked painted built cooked shared waited
because then when while so but very too again always never sometimes together every each some many one two three
window door table chair bed boat train car shoe hat coat cup bowl spoon key letter song game story picture`
  .split(/\s+/)
  .filter(Boolean);

/** A deterministic pseudo-random number in [0, 1) (the synthetic models' mulberry32). */
function random(seed: number): () => number {
  const next = prng(seed);
  return () => next() / 4294967296;
}

/** `count` varied lowercase words from `seed`, in sentences of 6–13 words. */
function words(seed: number, count: number): string {
  const next = random(seed);
  const out: string[] = [];
  let sentence = 0;
  for (let i = 0; i < count; i++) {
    let word = WORDS[Math.floor(next() * WORDS.length)]!;
    if (++sentence >= 6 + Math.floor(next() * 8) || i === count - 1) {
      word += ".";
      sentence = 0;
    }
    out.push(word);
  }
  return out.join(" ");
}

/** Words per user message for about `tokens` tokens: two one-message chats, 100 and 300 words, on `system`. */
async function calibrate(system: BenchSystem, tokens: number): Promise<{ words: number; tokensPerWord: number }> {
  const [short, long] = [
    await system.chat!([{ role: "user", content: words(999_001, 100) }], 1),
    await system.chat!([{ role: "user", content: words(999_001, 300) }], 1),
  ];
  const tokensPerWord = (long!.promptTokens - short!.promptTokens) / 200;
  return { words: Math.max(1, Math.round(tokens / tokensPerWord)), tokensPerWord };
}

export interface TurnRow {
  turn: number;
  promptTokens: number;
  cachedTokens: number;
  ttftMs: Spread;
}

export interface MultiturnSystem {
  label: string;
  engine: Engine;
  threads: number | undefined;
  turns: TurnRow[];
  /** Median TTFT of the last turn / of the first. */
  lastOverFirst: number;
  /** The last turn's whole history again with its first message changed: the same length, (almost) nothing cached. */
  uncached: { promptTokens: number; cachedTokens: number; ttftMs: Spread };
  samples: Sample[][];
}

export interface MultiturnResult {
  mode: "multiturn";
  model: string;
  turns: number;
  answerTokens: number;
  runs: number;
  wordsPerTurn: number;
  tokensPerWord: number;
  /** Median growth of prompt_tokens from one turn to the next (user message + previous answer + template). */
  promptTokensPerTurn: number;
  systems: MultiturnSystem[];
}

export async function benchMultiturn(spec: ModelSpec, options: Options): Promise<MultiturnResult> {
  const answerTokens = options.tokens ?? 16;
  const runs = options.runs ?? 3;
  const turns = options.turns;
  return withServers(spec, options, async (systems) => {
    const { words: wordsPerTurn, tokensPerWord } = await calibrate(systems[0]!, options.turnTokens);
    log(`${spec.name}: ${tokensPerWord.toFixed(2)} tokens per word; ${wordsPerTurn} words per user message`);
    // samples[system][turn] = one sample per run; turn `turns` is the uncached replay of the last turn.
    const samples = new Map<BenchSystem, Sample[][]>(
      systems.map((s) => [s, Array.from({ length: turns + 1 }, () => [])]),
    );
    for (let run = 0; run < runs; run++) {
      const histories = new Map<BenchSystem, ChatMessage[]>(systems.map((s) => [s, []]));
      for (let turn = 0; turn < turns; turn++) {
        const content = words(run * 1000 + turn, wordsPerTurn);
        const order = systems.map((_, i) => systems[(i + run + turn) % systems.length]!);
        for (const system of order) {
          const history = histories.get(system)!;
          history.push({ role: "user", content });
          const sample = await system.chat!(history, answerTokens);
          history.push({ role: "assistant", content: sample.text ?? "" });
          samples.get(system)![turn]!.push(sample);
          log(
            `${spec.name} run ${run + 1}/${runs} turn ${turn + 1} ${systemLabel(system)}: ${sample.promptTokens} prompt tokens, ${sample.cachedTokens ?? "?"} cached, TTFT ${sample.ttftMs.toFixed(0)} ms`,
          );
        }
      }
      for (const system of systems) {
        const [first, ...rest] = histories.get(system)!;
        const replay = [{ role: first!.role, content: `zq ${first!.content}` }, ...rest.slice(0, -1)];
        const sample = await system.chat!(replay, answerTokens);
        samples.get(system)![turns]!.push(sample);
        log(
          `${spec.name} run ${run + 1}/${runs} uncached replay ${systemLabel(system)}: ${sample.promptTokens} prompt tokens, ${sample.cachedTokens ?? "?"} cached, TTFT ${sample.ttftMs.toFixed(0)} ms`,
        );
      }
    }
    const row = (list: Sample[], turn: number): TurnRow => ({
      turn,
      promptTokens: median(list.map((s) => s.promptTokens)),
      cachedTokens: median(list.map((s) => s.cachedTokens ?? Number.NaN)),
      ttftMs: spread(list.map((s) => s.ttftMs)),
    });
    const results: MultiturnSystem[] = systems.map((system) => {
      const bySystem = samples.get(system)!;
      const rows = bySystem.slice(0, turns).map((list, turn) => row(list, turn + 1));
      const { turn: _turn, ...uncached } = row(bySystem[turns]!, turns);
      return {
        label: systemLabel(system),
        engine: system.engine,
        threads: system.threads,
        turns: rows,
        lastOverFirst: rows[turns - 1]!.ttftMs.median / rows[0]!.ttftMs.median,
        uncached,
        samples: bySystem,
      };
    });
    const growth = samples
      .get(systems[0]!)!
      .slice(1, turns)
      .flatMap((list, t) => list.map((s, run) => s.promptTokens - samples.get(systems[0]!)![t]![run]!.promptTokens));
    return {
      mode: "multiturn",
      model: spec.name,
      turns,
      answerTokens,
      runs,
      wordsPerTurn,
      tokensPerWord,
      promptTokensPerTurn: median(growth),
      systems: results,
    };
  });
}

/** A token count (a median of integers may end in .5). */
function count(value: number): string {
  return Number.isNaN(value) ? "n/a" : Math.round(value).toLocaleString("en-US");
}

/** TTFT per prompt token not taken from the cache (fixed per-request costs included). */
function perNewToken(row: TurnRow): string {
  return (row.ttftMs.median / (row.promptTokens - (Number.isNaN(row.cachedTokens) ? 0 : row.cachedTokens))).toFixed(2);
}

export function formatMultiturn(result: MultiturnResult): string {
  const title = `### ${result.model}: a ${result.turns}-turn chat, user messages of ${result.wordsPerTurn} words (${(result.wordsPerTurn * result.tokensPerWord).toFixed(0)} tokens), answers of ${result.answerTokens} tokens; prompt grows ${count(result.promptTokensPerTurn)} tokens a turn; median of ${result.runs} chats`;
  // Prompt tokens differ by a few between systems (each appends its own answers); cached tokens are per system.
  const perTurn = table(
    [
      "turn",
      `prompt tokens (${result.systems[0]?.label})`,
      ...result.systems.map((s) => `${s.label}: TTFT ms (cached)`),
    ],
    Array.from({ length: result.turns }, (_, t) => [
      String(t + 1),
      count(result.systems[0]?.turns[t]?.promptTokens ?? Number.NaN),
      ...result.systems.map((s) => `${number(s.turns[t]!.ttftMs.median)} (${count(s.turns[t]!.cachedTokens)})`),
    ]),
  );
  const last = result.turns;
  const summary = table(
    [
      "system",
      "threads",
      "TTFT turn 1 ms",
      `TTFT turn ${last} ms`,
      `turn ${last} / turn 1 (target ≤ 1.5×)`,
      `ms per new token, turn 1 → ${last}`,
      `turn ${last} uncached: prompt (cached)`,
      "uncached TTFT ms",
    ],
    result.systems.map((s) => [
      s.label,
      s.threads === undefined ? "?" : String(s.threads),
      range(s.turns[0]!.ttftMs),
      range(s.turns[last - 1]!.ttftMs),
      `${s.lastOverFirst.toFixed(2)}×`,
      `${perNewToken(s.turns[0]!)} → ${perNewToken(s.turns[last - 1]!)}`,
      `${count(s.uncached.promptTokens)} (${count(s.uncached.cachedTokens)})`,
      range(s.uncached.ttftMs),
    ]),
  );
  return `${title}\n\n${perTurn}\n\n${summary}\n`;
}
