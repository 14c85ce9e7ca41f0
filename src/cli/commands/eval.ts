import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import cliProgress from "cli-progress";
import type { Command } from "commander";
import { parseFileConfig } from "../../config/fileConfig.js";
import { parseSince } from "../../control/durations.js";
import { renderCsv, renderJunit } from "../../eval/exports.js";
import { formatUsd, renderHtmlReport } from "../../eval/html.js";
import { suiteFromLedger } from "../../eval/ledgerSuite.js";
import { cheapestGoodEnough, promoteInConfig, type RouteChange } from "../../eval/promote.js";
import { runEvaluation } from "../../eval/runner.js";
import { EvalStore, runIdentity } from "../../eval/store.js";
import { loadSuite, type Suite } from "../../eval/suite.js";
import { type EvalSummary, summarize } from "../../eval/summary.js";
import { Freehold } from "../../library.js";
import { commandSettings, print } from "../context.js";
import { UsageError } from "../errors.js";
import { evalModels, routeTargetOf } from "../evalModels.js";
import { formatTable } from "../table.js";

interface EvalOptions {
  models?: string;
  baseline?: string;
  concurrency: string;
  repeat?: string;
  json?: boolean;
  report?: string;
  junit?: string;
  csv?: string;
  minPass?: string;
  fresh?: boolean;
  fromLedger?: boolean;
  route?: string;
  since: string;
  sample: string;
  judge?: string;
  rubric?: string;
  threshold?: string;
  promote?: boolean;
  yes?: boolean;
}

function integer(value: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < min || parsed > max)
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`);
  return parsed;
}

function rate(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0 || parsed > 1)
    throw new UsageError(`${flag} must be a pass rate from 0 to 1 (0.9 = 90%), not ${JSON.stringify(value)}`);
  return parsed;
}

function cliActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return "cli";
  }
}

const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
const ms = (value: number | null) => (value === null ? "" : String(Math.round(value)));

function printSummary(summary: EvalSummary): void {
  const head = [
    "MODEL",
    "VERDICT",
    "PASS",
    "95% CI",
    "P50 MS",
    "P95 MS",
    "TTFT MS",
    "TOK/S",
    "PER 1,000",
    "VS BASELINE",
  ];
  const rows = summary.models.map((model) => [
    model.model,
    model.verdict,
    `${model.passes}/${model.answers} ${percent(model.passRate)}`,
    `${percent(model.interval.low)}-${percent(model.interval.high)}`,
    ms(model.latencyMs.p50),
    ms(model.latencyMs.p95),
    ms(model.ttftMs.p50),
    model.tokensPerSecond === null ? "" : model.tokensPerSecond.toFixed(0),
    formatUsd(model.costPer1000),
    model.comparison
      ? `p=${model.comparison.pValue.toFixed(3)} (+${model.comparison.candidateOnly}/-${model.comparison.baselineOnly})`
      : "",
  ]);
  for (const line of formatTable(head, rows)) print(line);
  print();
  for (const model of summary.models) print(`${model.model}: ${model.verdict} — ${model.reason}`);
}

async function confirm(question: string): Promise<boolean> {
  const lines = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await lines.question(question)).trim());
  } finally {
    lines.close();
  }
}

export function registerEval(program: Command): void {
  program
    .command("eval")
    .description(
      "is a model good enough? run a suite (or replayed traffic) on models and compare pass rate, speed and cost",
    )
    .argument("[suite]", "suite file (YAML); see examples/eval/ and docs/eval.md")
    .option("--models <list>", "models to evaluate, comma-separated: local names, routes, or provider/model")
    .option("--baseline <model>", "the model to compare against (a paired test over cases)")
    .option("--concurrency <n>", "answers in flight at once", "2")
    .option("--repeat <k>", "runs per case per model (default: the suite's repeat)")
    .option("--json", "print the results as JSON")
    .option("--report <file>", "write a self-contained HTML report with charts")
    .option("--junit <file>", "write JUnit XML for CI: a testcase per case and model, failures with the reason")
    .option("--csv <file>", "write every answer as a CSV row (model, case, repeat, pass, failures, timings, cost)")
    .option("--min-pass <rate>", "exit with 1 when a model (other than the baseline) passes less than this (0-1)")
    .option("--fresh", "start a new run even if an identical one was interrupted (default: continue it)")
    .option("--from-ledger", "build the suite from stored traffic (keys with --store-content) instead of a file")
    .option(
      "--route <name>",
      "with --from-ledger: the route (model name) whose traffic to replay; with --promote: the route to change",
    )
    .option("--since <when>", "with --from-ledger: how far back (7d, 24h, or a date)", "7d")
    .option("--sample <n>", "with --from-ledger: at most this many requests", "200")
    .option("--judge <model>", "with --from-ledger: the judge model")
    .option("--rubric <text>", "with --from-ledger: also judge every answer against this rubric")
    .option("--threshold <rate>", "pass rate a model needs to be good enough (default: the suite's, else 0.8)")
    .option("--promote", "propose making the cheapest good-enough model the route's first target (freehold.yaml)")
    .option("--yes", "with --promote: apply without asking")
    .action(async (suitePath: string | undefined, options: EvalOptions, command: Command) => {
      const concurrency = integer(options.concurrency, "--concurrency", 1, 64)!;
      const repeatFlag = integer(options.repeat, "--repeat", 1, 100);
      const minPass = rate(options.minPass, "--min-pass");
      const threshold = rate(options.threshold, "--threshold");
      const sample = integer(options.sample, "--sample", 1, 100_000)!;
      const listed = (options.models ?? "")
        .split(",")
        .map((name) => name.trim())
        .filter(Boolean);
      if (listed.length === 0) throw new UsageError("--models is required: the models to evaluate, comma-separated");
      if (options.fromLedger && suitePath) throw new Error("give a suite file or --from-ledger, not both");
      if (!options.fromLedger && !suitePath) throw new Error("give a suite file (or --from-ledger --route NAME)");
      if (options.fromLedger && !options.route)
        throw new UsageError("--from-ledger needs --route: the route to replay");
      if (options.fromLedger && !options.judge)
        throw new UsageError("--from-ledger needs --judge MODEL: the model that decides whether answers agree");
      if (options.promote && !options.route) throw new UsageError("--promote needs --route: the route to change");
      // Before the run, not after it: a typo in a folder name should not cost the whole evaluation.
      for (const [flag, file] of [
        ["--report", options.report],
        ["--junit", options.junit],
        ["--csv", options.csv],
      ] as const) {
        const folder = file === undefined ? undefined : dirname(resolve(file));
        if (folder && !existsSync(folder)) throw new UsageError(`${flag} ${file}: the folder ${folder} does not exist`);
      }

      const settings = commandSettings(command);
      const freehold = await Freehold.open({
        ...settings.config,
        allowedHosts: [...settings.config.allowedHosts],
        keepAliveSeconds: -1,
        ...(settings.filePath ? { configPath: settings.filePath } : {}),
      });
      const controller = new AbortController();
      const onInterrupt = () => controller.abort();
      process.once("SIGINT", onInterrupt);
      try {
        let suite: Suite;
        if (options.fromLedger) {
          const built = await suiteFromLedger(freehold.control.store.evals, {
            route: options.route!,
            sinceMs: parseSince(options.since, Date.now(), "--since"),
            sample,
            judge: options.judge!,
            threshold: threshold ?? 0.8,
            ...(options.rubric ? { rubric: options.rubric } : {}),
          });
          if (built.suite.cases.length === 0)
            throw new Error(
              `no stored requests to ${options.route} since ${options.since} (${built.skipped} skipped): content is kept only for keys created with --store-content`,
            );
          process.stderr.write(
            `replaying ${built.suite.cases.length} of ${built.found} stored requests to ${options.route}\n`,
          );
          suite = built.suite;
        } else {
          suite = loadSuite(suitePath!);
          if (threshold !== undefined) suite = { ...suite, threshold };
        }
        const repeat = repeatFlag ?? suite.repeat;
        const baseline = options.baseline ?? null;
        const models = [...new Set([...(baseline ? [baseline] : []), ...listed])];
        const models$ = evalModels(freehold);
        const graders = new Set<string>();
        for (const item of suite.cases)
          for (const entry of item.assert) {
            if (entry.type === "judge") graders.add(entry.model ?? suite.judge!);
            if (entry.type === "similar") graders.add(entry.model ?? suite.embeddingModel!);
            if (entry.type === "agrees-with") {
              graders.add(entry.judge ?? suite.judge!);
              if (entry.reference === undefined) graders.add(entry.model ?? suite.reference!);
            }
          }
        for (const spec of new Set([...models, ...graders])) await models$.check(spec);
        // Load local models first, so the first answers' latency is not the load time.
        for (const spec of new Set([...models, ...graders])) {
          const target = routeTargetOf(freehold, spec);
          if (target?.provider === "local") await freehold.engine.preload(target.model, -1);
        }

        const store = new EvalStore(freehold.control.store.evals);
        const previous = options.fresh
          ? undefined
          : await store.unfinished(runIdentity(suite, models, baseline, repeat));
        const run = previous ?? (await store.create(suite, models, baseline, repeat));
        const stored = previous ? (await store.results(run.id)).length : 0;
        if (previous) process.stderr.write(`continuing run ${run.id} (${stored} answers already stored)\n`);

        const started = performance.now();
        const bar =
          process.stderr.isTTY && !options.json
            ? new cliProgress.SingleBar(
                {
                  format: "{bar} {value}/{total} answers | {eta_formatted} left | {last}",
                  hideCursor: true,
                  stream: process.stderr,
                },
                cliProgress.Presets.shades_classic,
              )
            : undefined;
        const results = await runEvaluation(run, models$, store, freehold.control.prices, {
          concurrency,
          signal: controller.signal,
          onProgress: (progress) => {
            if (!bar) return;
            const last = progress.last
              ? `${progress.last.model} ${progress.last.caseId} ${progress.last.pass ? "pass" : "fail"}`
              : "";
            if (!progress.last) bar.start(progress.total, progress.done, { last });
            else bar.update(progress.done, { last });
          },
        });
        bar?.stop();
        const seconds = ((performance.now() - started) / 1000).toFixed(1);
        if (controller.signal.aborted) {
          process.stderr.write(
            `cancelled: ${results.length} answers stored in run ${run.id}; run the same command again to continue\n`,
          );
          process.exitCode = 130;
          return;
        }
        process.stderr.write(
          `eval ${run.id}: ${results.length - stored} answers in ${seconds} s${stored ? ` (${stored} from the interrupted run)` : ""}\n`,
        );
        const summary = summarize((await store.get(run.id))!, results);
        const outputs: [string | undefined, string, () => string][] = [
          [options.report, "report", () => renderHtmlReport(summary, results)],
          [options.junit, "junit", () => renderJunit(summary, results)],
          [options.csv, "csv", () => renderCsv(summary, results)],
        ];
        for (const [file, label, render] of outputs) {
          if (!file) continue;
          writeFileSync(file, render());
          process.stderr.write(`${label}: ${file}\n`);
        }
        let change: RouteChange | null = null;
        if (options.promote)
          change = await promote(
            freehold,
            settings.filePath,
            options.route!,
            summary,
            options.yes === true,
            options.json === true,
          );
        if (options.json)
          print(JSON.stringify({ ...summary, ...(options.promote ? { promotion: change } : {}) }, null, 2));
        else printSummary(summary);
        if (minPass !== undefined) {
          const below = summary.models.filter((model) => !model.baseline && model.passRate < minPass);
          if (below.length > 0) {
            process.stderr.write(
              `below --min-pass ${minPass}: ${below.map((model) => `${model.model} (${percent(model.passRate)})`).join(", ")}\n`,
            );
            process.exitCode = 1;
          }
        }
      } finally {
        process.removeListener("SIGINT", onInterrupt);
        await freehold.close();
      }
    });
}

/** Proposes (and, confirmed, applies) the route change to the cheapest good-enough model; audited. */
async function promote(
  freehold: Freehold,
  file: string | null,
  route: string,
  summary: EvalSummary,
  yes: boolean,
  quiet: boolean,
): Promise<RouteChange | null> {
  const say = (line: string) => (quiet ? process.stderr.write(`${line}\n`) : print(line));
  if (!file) throw new UsageError("--promote changes a route in freehold.yaml, and there is none: pass --config FILE");
  const eligible = { ...summary, models: summary.models.filter((model) => routeTargetOf(freehold, model.model)) };
  const best = cheapestGoodEnough(eligible);
  if (!best) {
    say(`no model is good enough: route ${route} stays as it is`);
    return null;
  }
  const target = routeTargetOf(freehold, best.model)!;
  const change = promoteInConfig(readFileSync(file, "utf8"), file, route, target);
  const show = (targets: { provider: string; model: string }[]) =>
    targets.map((t) => `${t.provider}/${t.model}`).join(" → ");
  say(`proposal: route ${route}: ${show(change.before)}  ⇒  ${show(change.after)}`);
  say(`  ${best.model}: ${best.reason}; ${formatUsd(best.costPer1000)} per 1,000 requests`);
  const apply = yes || (process.stdin.isTTY === true && (await confirm(`apply to ${file}? [y/N] `)));
  if (!apply) {
    say(yes ? "" : "not applied (confirm, or pass --yes)");
    return change;
  }
  parseFileConfig(change.text, file);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, change.text);
  renameSync(temporary, file);
  await freehold.control.audit.record({
    actor: cliActor(),
    action: "route.promote",
    target: route,
    detail: {
      run: summary.runId,
      suite: summary.suite,
      model: best.model,
      passRate: best.passRate,
      interval: best.interval,
      costPer1000: best.costPer1000,
      pValue: best.comparison?.pValue ?? null,
      before: change.before,
      after: change.after,
    },
  });
  say(`applied: ${file} updated (a running server picks it up on SIGHUP); recorded in the audit trail`);
  return change;
}
