import assert from "node:assert/strict";
import { test } from "node:test";
import { ollamaOverflow } from "./overflow.js";

test("Ollama's truncate and shift: truncate decides when set, shift otherwise, neither leaves it to the profile", () => {
  const values = [undefined, true, false] as const;
  for (const truncate of values)
    for (const shift of values) {
      const expected =
        truncate !== undefined
          ? truncate
            ? "truncate-middle"
            : "error"
          : shift !== undefined
            ? shift
              ? "shift"
              : "error"
            : undefined;
      assert.deepEqual(
        ollamaOverflow({ truncate, shift }),
        expected === undefined ? {} : { overflow: expected },
        `truncate ${truncate}, shift ${shift}`,
      );
    }
});
