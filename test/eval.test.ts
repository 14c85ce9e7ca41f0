import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import Database from "better-sqlite3";
import { ControlPlane } from "../src/control/controlPlane.js";
import { writeSyntheticModel } from "../src/gguf/index.js";
import { ModelStore } from "../src/store/store.js";
import { runCli } from "./helpers/cli.js";
import { type FakeCloud, type FakeCloudOptions, startFakeCloud } from "./helpers/fakeCloud.js";
import { projectRoot, storiesModelMissing, storiesModelPath, temporaryDirectory } from "./helpers/paths.js";

const lily = ", there was a little girl named Lily";

/** Nine cases: stories and the fake cloud pass eight (not `dragon`), the synthetic tiny model only `json`. */
const suiteText = `
name: exact
threshold: 0.8
defaults:
  temperature: 0
  max_tokens: 10
judge: cloud/judge
reference: cloud/gpt-4o-mini
embedding_model: stories
cases:
  - id: contains
    prompt: Once upon a time
    assert: [{ type: contains, value: Lily }]
  - id: icontains
    prompt: "{{start}}"
    vars: { start: Once upon a time }
    assert: [{ type: icontains, value: [LILY, dragon], match: any }]
  - id: regex
    prompt: Once upon a time
    assert: [{ type: regex, value: "named \\\\w+$" }]
  - id: starts-with
    prompt: Once upon a time
    assert: [{ type: starts-with, value: ", there was" }, { type: max-tokens, value: 10 }]
  - id: similar
    prompt: Once upon a time
    assert: [{ type: similar, value: "${lily}", threshold: 0.99 }]
  - id: judge
    prompt: Once upon a time
    assert: [{ type: judge, rubric: The story names its heroine }]
  - id: agrees
    prompt: Once upon a time
    assert: [{ type: agrees-with }]
  - id: json
    prompt: "The girl's name is"
    options:
      max_tokens: 40
      response_format:
        json_schema: { type: object, properties: { name: { type: string, maxLength: 6 } }, required: [name], additionalProperties: false }
    assert: [{ type: is-json }, { type: json-schema, value: { type: object, required: [name] } }]
  - id: dragon
    prompt: Once upon a time
    assert: [{ type: contains, value: dragon }]
`;

/** The candidate's answer in a judge request (rubric or agreement), so the fake judge can give fixed verdicts. */
function judgedAnswer(question: string): string {
  const candidate = /Candidate answer:\n([\s\S]*?)\n\nDoes the candidate/.exec(question);
  if (candidate) return candidate[1]!;
  return /\nAnswer:\n([\s\S]*?)\n\nRubric:/.exec(question)?.[1] ?? "";
}

interface ModelJson {
  model: string;
  verdict: string;
  answers: number;
  passes: number;
  passRate: number;
  interval: { low: number; high: number };
  assertions: Record<string, { passes: number; total: number }>;
  costPer1000: number | null;
  latencyMs: { p50: number | null; p95: number | null };
  ttftMs: { p50: number | null };
  tokensPerSecond: number | null;
  comparison: { baselineOnly: number; candidateOnly: number; pValue: number; significantlyWorse: boolean } | null;
}
interface SummaryJson {
  runId: string;
  complete: boolean;
  models: ModelJson[];
  cases: { caseId: string; models: Record<string, { passes: number; total: number; output: string }> }[];
  promotion?: { before: unknown[]; after: unknown[] } | null;
}

/** What must not change between an interrupted-and-resumed run and an uninterrupted one (timings aside). */
function outcome(summary: SummaryJson) {
  return {
    complete: summary.complete,
    models: summary.models.map((model) => ({
      model: model.model,
      verdict: model.verdict,
      passes: model.passes,
      answers: model.answers,
      interval: model.interval,
      assertions: model.assertions,
      comparison: model.comparison,
      cost: model.model.startsWith("cloud/") ? model.costPer1000 : null,
    })),
    cases: summary.cases,
  };
}

describe("freehold eval", { skip: storiesModelMissing }, () => {
  const home = temporaryDirectory("freehold-eval-");
  const env = { FREEHOLD_HOME: home.path, FREEHOLD_LOG_LEVEL: "warn" };
  const suitePath = join(home.path, "suite.yaml");
  const configPath = join(home.path, "freehold.yaml");
  const reportPath = join(home.path, "report.html");
  const cloudOptions: FakeCloudOptions = {
    answer: (prompt) => (prompt.includes("name is") ? '{"name": "Lily"}' : lily),
    judge: (question) => judgedAnswer(question).includes("Lily"),
  };
  let cloud: FakeCloud;
  let first: SummaryJson;

  before(async () => {
    cloud = await startFakeCloud(cloudOptions);
    const tiny = join(home.path, "tiny.gguf");
    writeSyntheticModel(tiny, { preset: "tiny", quant: "f32", seed: 0 });
    const store = new ModelStore({ home: home.path });
    await store.import(tiny, "tiny");
    await store.import(storiesModelPath, "stories");
    writeFileSync(suitePath, suiteText);
    writeFileSync(
      configPath,
      `# the paid model first, the local one as fallback
providers:
  cloud:
    kind: openai
    base_url: ${cloud.base}
routes:
  smart:
    privacy: allow
    targets:
      - provider: cloud # what we pay for today
        model: gpt-4o-mini
      - provider: local
        model: tiny
`,
    );
  });
  after(async () => {
    await cloud?.close();
    home.dispose();
  });

  const evaluate = (args: string[], timeoutMs = 120_000) => runCli(["eval", ...args], { env, timeoutMs });

  test("every number of a run against a fake paid baseline and judge, and --min-pass as a CI gate", async () => {
    const result = await evaluate([
      suitePath,
      "--models",
      "stories,tiny",
      "--baseline",
      "cloud/gpt-4o-mini",
      "--json",
      "--report",
      reportPath,
      "--min-pass",
      "0.9",
    ]);
    // stories passes 8/9 = 88.9% < 90%, and so fails the gate along with tiny.
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, /below --min-pass 0\.9: stories \(88\.9%\), tiny \(11\.1%\)/);
    first = JSON.parse(result.stdout) as SummaryJson;
    assert.equal(first.complete, true);
    const [baseline, stories, tiny] = first.models;
    assert.deepEqual(
      first.models.map((model) => [model.model, model.verdict, model.passes, model.answers]),
      [
        ["cloud/gpt-4o-mini", "baseline", 8, 9],
        ["stories", "good enough", 8, 9],
        ["tiny", "not good enough", 1, 9],
      ],
    );
    // Wilson 95% intervals, computed independently.
    assert.deepEqual(stories!.interval, { low: 0.5650002944233439, high: 0.9801091123614551 });
    assert.deepEqual(baseline!.interval, stories!.interval);
    assert.deepEqual(tiny!.interval, { low: 0.019890887638544907, high: 0.434999705576656 });
    // McNemar over cases: stories and the baseline never disagree; tiny loses 7 cases and wins none: p = 2/2^7.
    assert.deepEqual(stories!.comparison, {
      baselineOnly: 0,
      candidateOnly: 0,
      pValue: 1,
      significantlyWorse: false,
      significantlyBetter: false,
      cases: 9,
    });
    assert.equal(tiny!.comparison!.baselineOnly, 7);
    assert.equal(tiny!.comparison!.candidateOnly, 0);
    assert.equal(tiny!.comparison!.pValue, 0.015625);
    assert.equal(tiny!.comparison!.significantlyWorse, true);
    // Per-assertion breakdown.
    assert.deepEqual(stories!.assertions, {
      contains: { passes: 1, total: 2 },
      icontains: { passes: 1, total: 1 },
      regex: { passes: 1, total: 1 },
      "starts-with": { passes: 1, total: 1 },
      "max-tokens": { passes: 1, total: 1 },
      similar: { passes: 1, total: 1 },
      judge: { passes: 1, total: 1 },
      "agrees-with": { passes: 1, total: 1 },
      "is-json": { passes: 1, total: 1 },
      "json-schema": { passes: 1, total: 1 },
    });
    assert.deepEqual(tiny!.assertions["is-json"], { passes: 1, total: 1 });
    assert.deepEqual(tiny!.assertions.judge, { passes: 0, total: 1 });
    // gpt-4o-mini at $0.15/$0.60 per million, 7 prompt + 10 completion tokens: $7.05e-6 a request.
    assert.equal(baseline!.costPer1000, 0.00705);
    // Local models cost their electricity: positive, far below the paid model.
    assert.ok(stories!.costPer1000! > 0 && stories!.costPer1000! < 0.00705, String(stories!.costPer1000));
    for (const model of first.models) {
      assert.ok(model.latencyMs.p50! > 0 && model.latencyMs.p95! >= model.latencyMs.p50!);
      assert.ok(model.ttftMs.p50! > 0);
      assert.ok(model.tokensPerSecond! > 0);
    }
    // The answers themselves: stories at temperature 0, and grammar-constrained JSON.
    const contains = first.cases.find((item) => item.caseId === "contains")!;
    assert.equal(contains.models.stories!.output, lily);
    const json = first.cases.find((item) => item.caseId === "json")!;
    assert.equal(json.models.stories!.passes, 1);
    assert.equal(typeof (JSON.parse(json.models.tiny!.output) as { name: unknown }).name, "string");
    // Judge calls asked for the verdict schema.
    const judged = cloud.requests.filter((request) => request.body.model === "judge");
    assert.equal(judged.length, 6, "judge and agrees-with for each of three models");
    for (const request of judged) assert.equal((request.body.response_format as { type: string }).type, "json_schema");
    // The run is in freehold.db.
    const db = new Database(join(home.path, "freehold.db"), { readonly: true });
    try {
      const row = db.prepare("SELECT COUNT(*) AS n FROM eval_results WHERE run_id = ?").get(first.runId) as {
        n: number;
      };
      assert.equal(row.n, 27);
    } finally {
      db.close();
    }
  });

  test("the HTML report is self-contained and its charts render in headless Chromium", async () => {
    assert.ok(first, "needs the first test's report");
    const chromium = "/usr/bin/chromium";
    assert.ok(
      existsSync(chromium),
      `Chromium is missing at ${chromium}: install it (apt-get install -y chromium) — .ci/run does this`,
    );
    const html = readFileSync(reportPath, "utf8");
    assert.doesNotMatch(html, /<script|https?:\/\/(?!www\.w3\.org)/, "no scripts, nothing fetched");
    const { chromium: launcher } = await import("playwright-core");
    const browser = await launcher.launch({
      executablePath: chromium,
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const fetched: string[] = [];
      page.on("request", (request) => {
        if (!request.url().startsWith("file:")) fetched.push(request.url());
      });
      await page.goto(`file://${reportPath}`);
      assert.deepEqual(fetched, []);
      assert.equal(await page.locator("#cost-chart circle.point").count(), 3);
      assert.equal(await page.locator("#latency-chart circle.latency").count(), 27);
      const box = await page.locator("#cost-chart").boundingBox();
      assert.ok(box && box.width > 300 && box.height > 200, JSON.stringify(box));
      assert.equal(await page.locator("table.grid tbody tr").count(), 9);
      const cells = await page.locator("table.summary tbody tr").nth(1).locator("td").allTextContents();
      assert.deepEqual(cells.slice(0, 4), ["stories", "good enough", "8/9 (88.9%)", "56.5%–98.0%"]);
      const shot = join(home.path, "report.png");
      await page.screenshot({ path: shot, fullPage: true });
      assert.ok(statSync(shot).size > 10_000, "a screenshot with content");
    } finally {
      await browser.close();
    }
  });

  test("a killed run continues where it stopped, Ctrl-C cancels, and the final numbers equal an uninterrupted run", async () => {
    assert.ok(first, "needs the uninterrupted run");
    cloudOptions.delayMs = 120;
    const args = [suitePath, "--models", "stories,tiny", "--baseline", "cloud/gpt-4o-mini", "--concurrency", "1"];
    const db = new Database(join(home.path, "freehold.db"), { readonly: true });
    // Answers stored by the newest run other than the first test's.
    const stored = () =>
      (
        db
          .prepare(
            "SELECT COUNT(*) AS n FROM eval_results WHERE run_id = (SELECT id FROM eval_runs WHERE id != ? ORDER BY created_ms DESC LIMIT 1)",
          )
          .get(first.runId) as { n: number }
      ).n;
    const interrupt = async (signal: NodeJS.Signals, atLeast: number) => {
      const child = spawn(
        process.execPath,
        ["--import", "tsx", resolve(projectRoot, "src/cli/entry.ts"), "eval", ...args],
        {
          cwd: projectRoot,
          env: { ...process.env, ...env },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let stderr = "";
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
      });
      const exited = new Promise<number | null>((done) => child.on("exit", (code) => done(code)));
      const deadline = Date.now() + 60_000;
      while (stored() < atLeast && Date.now() < deadline && child.exitCode === null)
        await new Promise((done) => setTimeout(done, 50));
      child.kill(signal);
      return { code: await exited, stderr };
    };
    try {
      const killed = await interrupt("SIGKILL", 4);
      assert.equal(killed.code, null);
      const afterKill = stored();
      assert.ok(afterKill >= 4 && afterKill < 27, `${afterKill} answers stored`);

      const cancelled = await interrupt("SIGINT", afterKill + 3);
      assert.equal(cancelled.code, 130, cancelled.stderr);
      assert.match(cancelled.stderr, /continuing run eval_\w+ \(\d+ answers already stored\)/);
      assert.match(cancelled.stderr, /cancelled: \d+ answers stored in run eval_\w+; run the same command again/);
      const afterCancel = stored();
      assert.ok(afterCancel > afterKill && afterCancel < 27, `${afterKill} then ${afterCancel}`);

      cloudOptions.delayMs = 0;
      const resumed = await evaluate([...args, "--json"]);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stderr, new RegExp(`continuing run eval_\\w+ \\(${afterCancel} answers already stored\\)`));
      const summary = JSON.parse(resumed.stdout) as SummaryJson;
      assert.notEqual(summary.runId, first.runId);
      assert.equal(stored(), 27);
      assert.deepEqual(outcome(summary), outcome(first));
    } finally {
      db.close();
      cloudOptions.delayMs = 0;
    }
  });

  test("a suite error names the file, line, case and field", async () => {
    const bad = join(home.path, "bad.yaml");
    writeFileSync(
      bad,
      "cases:\n  - id: ok\n    prompt: hi\n    assert: [{ type: contains, value: x }]\n  - id: broken\n    prompt: hi\n    assert:\n      - type: regex\n        value: '(unclosed'\n",
    );
    const result = await evaluate([bad, "--models", "stories"]);
    assert.equal(result.code, 1);
    assert.match(
      result.stderr,
      /bad\.yaml:9: cases\[1\] \(broken\): assert\[0\]\.value: not a valid regular expression/,
    );
    const unknown = await evaluate([suitePath, "--models", "nope"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no model, route or provider is named "nope"/);
  });

  test("replaying stored traffic of a route, then promoting the cheapest good-enough model (audited)", async () => {
    const control = new ControlPlane({ home: home.path, logLevel: "silent" });
    try {
      const now = Date.now();
      const request = (prompt: string) => ({
        kind: "completion",
        model: "smart",
        prompt,
        sampling: { temperature: 0 },
        limits: { maxTokens: 10 },
      });
      control.sqlite.ledger.storeContent("req_a", "key_1", now - 1000, null, request("Once upon a time"), lily);
      control.sqlite.ledger.storeContent("req_b", "key_1", now - 900, null, request("Once upon a time"), lily);
      control.sqlite.ledger.storeContent("req_old", "key_1", now - 30 * 86_400_000, null, request("Once"), lily);
      control.sqlite.ledger.storeContent(
        "req_other",
        "key_1",
        now - 800,
        null,
        { ...request("x"), model: "other" },
        "y",
      );
    } finally {
      await control.close();
    }
    const result = await evaluate([
      "--from-ledger",
      "--route",
      "smart",
      "--since",
      "7d",
      "--sample",
      "200",
      "--judge",
      "cloud/judge",
      "--models",
      "stories,tiny",
      "--promote",
      "--yes",
      "--json",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /replaying 2 of 2 stored requests to smart/);
    assert.match(
      result.stderr,
      /proposal: route smart: cloud\/gpt-4o-mini → local\/tiny {2}⇒ {2}local\/stories → cloud\/gpt-4o-mini → local\/tiny/,
    );
    const summary = JSON.parse(result.stdout) as SummaryJson;
    assert.deepEqual(
      summary.models.map((model) => [model.model, model.verdict, model.passes, model.answers]),
      [
        ["stories", "good enough", 2, 2],
        ["tiny", "not good enough", 0, 2],
      ],
    );
    const config = readFileSync(configPath, "utf8");
    assert.match(config, /# the paid model first/, "comments kept");
    assert.match(
      config,
      /targets:\n\s+- provider: local\n\s+model: stories\n\s+- provider: cloud # what we pay for today/,
    );
    const audit = await runCli(["audit", "list", "--format", "json"], { env });
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /route\.promote/);
  });
});
