import assert from "node:assert/strict";
import { test } from "node:test";
import { parseKeepAlive } from "./duration.js";
import { InvalidRequestError } from "./errors.js";

test("keep_alive accepts Ollama's forms", () => {
  assert.equal(parseKeepAlive("10m"), 600_000);
  assert.equal(parseKeepAlive("1h30m"), 5_400_000);
  assert.equal(parseKeepAlive("300ms"), 300);
  assert.equal(parseKeepAlive("45"), 45_000);
  assert.equal(parseKeepAlive(0), 0);
  assert.equal(parseKeepAlive("0"), 0);
  assert.equal(parseKeepAlive(-1), -1);
  assert.equal(parseKeepAlive("-1m"), -1);
  assert.equal(parseKeepAlive(2.5), 2500);
});

test("keep_alive refuses what it cannot read, naming the field", () => {
  for (const bad of ["soon", "10x", "5m garbage", "", Number.NaN]) {
    assert.throws(
      () => parseKeepAlive(bad),
      (error: unknown) => error instanceof InvalidRequestError && error.param === "keep_alive",
    );
  }
});
