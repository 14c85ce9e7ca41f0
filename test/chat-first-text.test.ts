// A chat answer's first text goes out with its first token (issue 14, session 5: chat TTFT). The reasoning stage held
// an answer's leading whitespace until its first other character, so an answer of only whitespace (the 1B bench
// shape writes "\n"s) reached the client at its end: time to first token = the whole generation.
import assert from "node:assert/strict";
import { test } from "node:test";
import { countDecodes } from "./helpers/decodeCounter.js";
import { storiesModelMissing } from "./helpers/paths.js";
import { loadStoriesRunner } from "./helpers/storiesRunner.js";

test("a chat answer of whitespace: its first text is sent after the prompt's decode, not at the end", {
  skip: storiesModelMissing,
}, async (t) => {
  const counts = await countDecodes();
  const model = await loadStoriesRunner({ contextSize: 512, sequences: 1 });
  t.after(() => model.dispose());
  // stories260K's byte tokens for "\n" (<0x0A>, id 13) and "\t" (id 12), pushed to the top: every token of the
  // answer is whitespace. (Spaces are left out: detokenizing drops some of a run of leading spaces, a known issue.)
  for (const [id, text] of [
    ["13", "\n"],
    ["12", "\t"],
  ] as const) {
    counts.reset();
    const deltas: { text: string; decodes: number }[] = [];
    let generated = 0;
    await model.generate(
      {
        model: "stories",
        kind: "chat",
        messages: [{ role: "user", content: "Tell me a story about a cat." }],
        sampling: { temperature: 0, logitBias: { [id]: 100 } },
        limits: { maxTokens: 8, ignoreEos: true },
      },
      new AbortController().signal,
      (event) => {
        if (event.type === "text-delta" && event.text) deltas.push({ text: event.text, decodes: counts.decodes });
        if (event.type === "usage") generated = event.usage.completionTokens;
      },
    );
    assert.equal(generated, 8);
    assert.equal(deltas.map((d) => d.text).join(""), text.repeat(8), "the whole answer, once");
    // The first token is sampled from the prompt's decode: its text goes out before the next decode.
    assert.equal(deltas[0]?.decodes, 1, `${JSON.stringify(text)}: first text after ${deltas[0]?.decodes} decodes`);
    assert.equal(deltas.length, 8, "one text delta per token");
  }
});
