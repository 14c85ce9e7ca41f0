import assert from "node:assert/strict";
import { test } from "node:test";
import { chooseThreads } from "./threads.js";

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
