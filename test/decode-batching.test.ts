// Concurrent requests share each decode (issue 14, item 1): with 4 requests generating at once, node-llama-cpp must
// decode one token of each in one llama_decode per step, as llama-server does, not one request at a time or in
// ragged groups (src/engine/runner/decodeStep.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { computePasses, countDecodes } from "./helpers/decodeCounter.js";
import { storiesModelMissing } from "./helpers/paths.js";
import { loadStoriesRunner } from "./helpers/storiesRunner.js";

const STORY = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";

test("4 concurrent requests: one decode per step carries a token of each", { skip: storiesModelMissing }, async (t) => {
  const counts = await countDecodes();
  const model = await loadStoriesRunner({ contextSize: 1024, sequences: 4 });
  t.after(() => model.dispose());
  const tokens = 32;
  for (const [run, withLogprobs] of [
    [0, false],
    [1, true],
  ] as const) {
    counts.reset();
    const texts = await Promise.all(
      Array.from({ length: 4 }, async (_, i) => {
        let text = "";
        let completion = 0;
        await model.generate(
          {
            model: "stories",
            kind: "completion",
            prompt: `${"ABCDEFGH"[run * 4 + i]}. ${STORY}`,
            sampling: { temperature: 0 },
            limits: { maxTokens: tokens, ignoreEos: true },
            ...(withLogprobs && i % 2 === 0 ? { logprobs: 2 } : {}),
          },
          new AbortController().signal,
          (event) => {
            if (event.type === "text-delta") text += event.text;
            if (event.type === "usage") completion = event.usage.completionTokens;
          },
        );
        assert.equal(completion, tokens);
        return text;
      }),
    );
    assert.equal(texts.length, 4);
    // The prompts take a decode or two (they arrive a little apart), then one decode per generated token. Before
    // the fix, requests missed steps and got decodes of their own: 85 decodes for 4 × 64 tokens.
    assert.ok(counts.decodes >= tokens, `decodes: ${counts.decodes}`);
    assert.ok(
      counts.decodes <= tokens + 3,
      `4 × ${tokens} tokens took ${counts.decodes} decodes (logprobs: ${withLogprobs}); ideal ${tokens}`,
    );
    // And each generating decode is one compute pass: llama.cpp splits a batch whose sequence ids do not go up by
    // one in batch order into several (docs/threads.md, "Batch order"), each costing about a whole decode on a real
    // model. Before the fix the requests' tokens went into the batch in the order their requests resumed: 3,2,1,0 is
    // 4 passes, 2,3,0,1 is 2 (72 passes for 33 decodes). A request that ends first may leave a gap at the end.
    const generating = counts.batches.filter((batch) => batch.length > 1 && batch.every((item) => item.tokens === 1));
    const passes = generating.reduce((sum, batch) => sum + computePasses(batch), 0);
    const orders = counts.batches.map((batch) => batch.map((item) => item.sequenceId).join(",")).join(" ");
    assert.ok(generating.length >= tokens - 3, `batches: ${orders}`);
    assert.ok(
      passes <= generating.length + 2,
      `${generating.length} generating decodes took ${passes} compute passes (run ${run}); batches: ${orders}`,
    );
  }
});
