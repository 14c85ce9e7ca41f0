import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "./helpers/cli.js";
import { storiesModelMissing, storiesModelPath } from "./helpers/paths.js";
import { postJson, type ServerProcess, startServerProcess } from "./helpers/server.js";

/** Issue 14 item 7: a profile's `draft: MODEL` drafts tokens the model verifies (speculative decoding). */
describe("speculative decoding with a draft model", { skip: storiesModelMissing }, () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServerProcess({ models: { stories: storiesModelPath } });
    const profile = join(server.home, "drafted.yaml");
    writeFileSync(profile, "from: stories\ndraft: stories\n");
    const created = await runCli(["create", "drafted", "-f", profile], { env: { FREEHOLD_HOME: server.home } });
    assert.equal(created.code, 0, created.stderr);
  });
  after(async () => {
    await server?.dispose();
  });

  const complete = async (model: string, prompt: string) => {
    const response = await postJson(`${server.url}/v1/completions`, {
      model,
      prompt,
      max_tokens: 60,
      temperature: 0,
      ignore_eos: true,
    });
    const body = (await response.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    assert.equal(response.status, 200, `${JSON.stringify(body)}\n${server.output().slice(-3000)}`);
    return body;
  };

  test("stories260K drafting for itself answers exactly what it answers alone, at temperature 0", async () => {
    for (const prompt of ["Once upon a time", "The little dog", "Tom and Lily went to the park. They"]) {
      const alone = await complete("stories", prompt);
      const drafted = await complete("drafted", prompt);
      assert.equal(drafted.usage.completion_tokens, 60);
      assert.equal(drafted.choices[0]!.text, alone.choices[0]!.text, prompt);
    }
    // The draft really drafted: /metrics counts the tokens the model accepted from it (and those it rejected).
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const count = (outcome: string) =>
      Number(
        new RegExp(`freehold_draft_tokens_total\\{model="drafted",outcome="${outcome}"\\} (\\d+)`).exec(metrics)?.[1] ??
          Number.NaN,
      );
    // The model is its own draft at temperature 0, so it agrees with nearly every drafted token (4 of 47 were
    // rejected in one run; why those few is not known). With more than one drafted token per step, node-llama-cpp
    // rejected all but the first of each (52.8% accepted; see the test below).
    const accepted = count("accepted");
    const rejected = count("rejected");
    assert.ok(accepted > 0 && rejected * 10 <= accepted, `accepted ${accepted}, rejected ${rejected}`);
    assert.doesNotMatch(metrics, /freehold_draft_tokens_total\{model="stories"/, "no draft counts without a draft");
  });

  test("a profile naming a draft model that is not in the store fails to load with a message that says so", async () => {
    const profile = join(server.home, "orphan.yaml");
    writeFileSync(profile, "from: stories\ndraft: no-such-draft\n");
    const created = await runCli(["create", "orphan", "-f", profile], { env: { FREEHOLD_HOME: server.home } });
    assert.equal(created.code, 0, created.stderr);
    const response = await postJson(`${server.url}/v1/completions`, { model: "orphan", prompt: "x", max_tokens: 1 });
    assert.equal(response.status, 500);
    assert.match(await response.text(), /draft model \\"no-such-draft\\", which is not in the store/);
  });
});

// Why freehold drafts one token per step (src/engine/runner/runnerModel.ts, draftOptions): node-llama-cpp validates at
// most one drafted token per verification. When this test fails, node-llama-cpp validates more: raise maxTokens there.
test("node-llama-cpp still refutes every drafted token after the first in a step, even when the model agrees", {
  skip: storiesModelMissing,
}, async (t) => {
  const nlc = await import("node-llama-cpp");
  const llama = await nlc.getLlama({ gpu: false, maxThreads: 1, logLevel: nlc.LlamaLogLevel.warn });
  const model = await llama.loadModel({ modelPath: storiesModelPath });
  const context = await model.createContext({ contextSize: 512, sequences: 1, threads: { ideal: 1, min: 1 } });
  const draftContext = await model.createContext({ contextSize: 512, sequences: 1, threads: { ideal: 1, min: 1 } });
  t.after(async () => {
    await context.dispose();
    await draftContext.dispose();
    await model.dispose();
  });
  const sequence = context.getSequence({
    tokenPredictor: new nlc.DraftSequenceTokenPredictor(draftContext.getSequence(), {
      minTokens: 2,
      maxTokens: 2,
      minConfidence: 0,
    }),
  });
  let generated = 0;
  for await (const _ of sequence.evaluate(model.tokenize("Once upon a time", true), { temperature: 0 })) {
    if (++generated >= 40) break;
  }
  const { validated, refuted } = sequence.tokenPredictions;
  // The draft is the model itself at temperature 0: a correct verifier would refute nothing.
  assert.ok(validated > 0, `validated ${validated}`);
  assert.ok(
    refuted >= validated,
    `node-llama-cpp now validated ${validated} and refuted ${refuted} drafted tokens: it validates more than one per step; raise draftOptions.maxTokens in src/engine/runner/runnerModel.ts and measure (npm run bench -- --models llama1b --draft llama1b-draft)`,
  );
});
