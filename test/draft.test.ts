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
    assert.ok(count("accepted") > 0, `accepted ${count("accepted")}`);
    assert.ok(count("rejected") >= 0, `rejected ${count("rejected")}`);
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
