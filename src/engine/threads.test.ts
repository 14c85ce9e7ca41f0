import assert from "node:assert/strict";
import { test } from "node:test";
import { chooseBusyThreads, chooseThreads } from "./threads.js";

test("one thread on two cores, whatever the model (measured: a second thread costs 2-30x)", () => {
  assert.equal(chooseThreads({ parameters: 300_000 }, 2), 1);
  assert.equal(chooseThreads({ parameters: 163_000_000 }, 2), 1);
  assert.equal(chooseThreads({ parameters: 7_000_000_000 }, 1), 1);
});

test("tiny models stay on one thread; bigger ones get half the cores, at most 8", () => {
  assert.equal(chooseThreads({ parameters: 300_000 }, 16), 1);
  assert.equal(chooseThreads({ parameters: 163_000_000 }, 8), 4);
  assert.equal(chooseThreads({ parameters: 7_000_000_000 }, 64), 8);
});

test("while several requests share each decode, models of 50M+ parameters get both of two cores; tiny ones keep one", () => {
  assert.equal(chooseBusyThreads({ parameters: 163_000_000 }, 2), 2);
  assert.equal(chooseBusyThreads({ parameters: 300_000 }, 2), 1);
  assert.equal(chooseBusyThreads({ parameters: 163_000_000 }, 1), 1);
  assert.equal(chooseBusyThreads({ parameters: 163_000_000 }, 8), chooseThreads({ parameters: 163_000_000 }, 8));
});
