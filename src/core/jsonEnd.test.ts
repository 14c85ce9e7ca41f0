import assert from "node:assert/strict";
import { test } from "node:test";
import { JsonEndTracker } from "./jsonEnd.js";

test("finds the end of a streamed object, ignoring brackets inside strings", () => {
  const tracker = new JsonEndTracker();
  assert.equal(tracker.push('{ "a": "}]{\\"'), -1);
  assert.equal(tracker.push('", "b": [1, {"c": 2}]'), -1);
  assert.equal(tracker.push(" }\n\n\n"), 2);
  assert.equal(JSON.parse('{ "a": "}]{\\"", "b": [1, {"c": 2}] }').a, '}]{"');
});

test("arrays end too; text before the value does not confuse it", () => {
  const tracker = new JsonEndTracker();
  assert.equal(tracker.push("  [[1], 2"), -1);
  assert.equal(tracker.push("]  "), 1);
});
