import assert from "node:assert/strict";
import { test } from "node:test";
import { StopSequenceMatcher } from "./stopSequences.js";

function run(stops: string[], pieces: string[]): { out: string; stopped: boolean; emitted: string[] } {
  const matcher = new StopSequenceMatcher(stops);
  const emitted: string[] = [];
  for (const piece of pieces) {
    const result = matcher.push(piece);
    if (result.text) emitted.push(result.text);
    if (result.stopped) return { out: emitted.join(""), stopped: true, emitted };
  }
  emitted.push(matcher.flush());
  return { out: emitted.join(""), stopped: false, emitted };
}

test("a stop sequence inside one piece cuts the text before it", () => {
  assert.deepEqual(run(["END"], ["hello END world"]).out, "hello ");
});

test("a stop sequence spanning pieces never leaks a partial stop string", () => {
  const result = run(["</answer>"], ["The answer is 4", "</an", "swer>", " trailing"]);
  assert.equal(result.out, "The answer is 4");
  assert.equal(result.stopped, true);
  for (const piece of result.emitted) assert.ok(!piece.includes("<"), `leaked "${piece}"`);
});

test("held text that turns out not to be a stop is emitted", () => {
  const result = run(["\n\n"], ["line one\n", "line two\n", "end"]);
  assert.equal(result.out, "line one\nline two\nend");
  assert.equal(result.stopped, false);
});

test("the earliest of several stops wins", () => {
  assert.equal(run(["b", "a"], ["xxab"]).out, "xx");
});

test("no stops passes text through", () => {
  assert.equal(run([], ["a", "b"]).out, "ab");
});
