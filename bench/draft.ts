// Single mode with --draft: speculative decoding. freehold serves the model and a profile of it with `draft: DRAFT`;
// both get the same prompts at temperature 0, interleaved run by run. Reports decode tok/s of each, the speed-up, the
// draft's acceptance rate (freehold_draft_tokens_total in /metrics, over the timed runs) and whether the answers are
// identical (they must be: the draft only proposes, the model decides).
import { rm } from "node:fs/promises";
import { createProfile, prepareFreeholdHome, startFreehold } from "./freehold.js";
import { CONTEXT_SIZE, type ModelSpec, prompt } from "./models.js";
import type { Options } from "./options.js";
import { log } from "./processes.js";
import { median, type Spread, spread } from "./report.js";
import { type Sample, timedCompletionText } from "./sse.js";

export interface DraftResult {
  model: string;
  draft: string;
  tokens: number;
  runs: number;
  plain: Spread;
  drafted: Spread;
  /** drafted / plain median decode tokens/s (> 1: the draft pays). */
  speedUp: number;
  acceptedTokens: number;
  rejectedTokens: number;
  /** accepted / (accepted + rejected) drafted tokens, over the timed runs. */
  acceptanceRate: number;
  /** Every run answered the same text with and without the draft. */
  identical: boolean;
  samples: { plain: Sample[]; drafted: Sample[] };
}

/** The draft counters of `model` in freehold's /metrics. */
async function draftCounts(url: string, model: string): Promise<{ accepted: number; rejected: number }> {
  const metrics = await (await fetch(new URL("/metrics", url))).text();
  const count = (outcome: string) => {
    const line = metrics
      .split("\n")
      .find(
        (row) =>
          row.startsWith("freehold_draft_tokens_total{") &&
          new RegExp(`model="${model}(:latest)?"`).test(row) &&
          row.includes(`outcome="${outcome}"`),
      );
    return line ? Number(line.split(" ").at(-1)) : 0;
  };
  return { accepted: count("accepted"), rejected: count("rejected") };
}

export async function benchDraft(spec: ModelSpec, draftSpec: ModelSpec, options: Options): Promise<DraftResult> {
  const tokens = options.tokens ?? spec.tokens;
  const runs = options.runs ?? spec.runs;
  const draftName = draftSpec.name === spec.name ? spec.name : `${draftSpec.name}-draft`;
  const drafted = `${spec.name}-drafted`;
  const home = await prepareFreeholdHome({
    [spec.name]: await spec.path(),
    ...(draftName === spec.name ? {} : { [draftName]: await draftSpec.path() }),
  });
  await createProfile(home, drafted, `from: ${spec.name}\ndraft: ${draftName}\n`);
  const system = await startFreehold({ home, model: spec.name, threads: 0, contextSize: CONTEXT_SIZE });
  const url = system.url!;
  const samples = { plain: [] as Sample[], drafted: [] as Sample[] };
  let identical = true;
  let before = { accepted: 0, rejected: 0 };
  try {
    const complete = (model: string, text: string) =>
      timedCompletionText(url, {
        model,
        prompt: text,
        max_tokens: tokens,
        temperature: 0,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      });
    // Warm both (loads the model, and the model with its draft), untimed.
    for (const model of [spec.name, drafted]) await complete(model, prompt(-1));
    before = await draftCounts(url, drafted);
    for (let run = 0; run < runs; run++) {
      // Alternate which goes first, so that neither always follows the other.
      const order = run % 2 === 0 ? [spec.name, drafted] : [drafted, spec.name];
      const answers = new Map<string, Sample>();
      for (const model of order) {
        const sample = await complete(model, prompt(run));
        answers.set(model, sample);
        log(
          `${spec.name} run ${run + 1}/${runs} ${model === drafted ? `with draft ${draftName}` : "alone"}: ${sample.decodeTokensPerSecond.toFixed(1)} tok/s`,
        );
      }
      samples.plain.push(answers.get(spec.name)!);
      samples.drafted.push(answers.get(drafted)!);
      if (answers.get(spec.name)!.text !== answers.get(drafted)!.text) {
        identical = false;
        log(`warning: run ${run + 1}: the drafted answer differs from the model's own`);
      }
    }
  } finally {
    const after = await draftCounts(url, drafted).catch(() => before);
    before = { accepted: after.accepted - before.accepted, rejected: after.rejected - before.rejected };
    await system.close();
    await rm(home, { recursive: true, force: true });
  }
  const plain = spread(samples.plain.map((s) => s.decodeTokensPerSecond));
  const draftedSpread = spread(samples.drafted.map((s) => s.decodeTokensPerSecond));
  const { accepted, rejected } = before;
  return {
    model: spec.name,
    draft: draftSpec.name,
    tokens,
    runs,
    plain,
    drafted: draftedSpread,
    speedUp: median(samples.drafted.map((s) => s.decodeTokensPerSecond)) / plain.median,
    acceptedTokens: accepted,
    rejectedTokens: rejected,
    acceptanceRate: accepted + rejected > 0 ? accepted / (accepted + rejected) : Number.NaN,
    identical,
    samples,
  };
}

export function formatDraft(result: DraftResult): string {
  const rate = (s: Spread) => `${s.median.toFixed(1)} (${s.min.toFixed(1)}–${s.max.toFixed(1)})`;
  return [
    `### ${result.model} drafted by ${result.draft} (${result.tokens} tokens, ${result.runs} runs, temperature 0)`,
    "",
    "| freehold | decode tok/s median (min–max) |",
    "|---|---|",
    `| ${result.model} alone | ${rate(result.plain)} |`,
    `| ${result.model} with draft ${result.draft} | ${rate(result.drafted)} |`,
    "",
    `speed-up ${result.speedUp.toFixed(2)}×; draft acceptance ${(result.acceptanceRate * 100).toFixed(1)}% ` +
      `(${result.acceptedTokens} accepted, ${result.rejectedTokens} rejected); identical answers: ${result.identical ? "yes" : "NO"}`,
    "",
  ].join("\n");
}
