import assert from "node:assert/strict";
import { test } from "node:test";
import { parseDurationText, parseKeepAlive } from "./duration.js";
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

test("one duration syntax: compound parts, days and weeks, in any spelling Go and Ollama users write", () => {
  assert.equal(parseDurationText("90s"), 90_000);
  assert.equal(parseDurationText("5m"), 300_000);
  assert.equal(parseDurationText("1h30m"), 5_400_000);
  assert.equal(parseDurationText("7d"), 7 * 86_400_000);
  assert.equal(parseDurationText("1d12h"), 36 * 3_600_000);
  assert.equal(parseDurationText("2w"), 14 * 86_400_000);
  assert.equal(parseDurationText(" 1.5h "), 5_400_000);
  for (const bad of ["", "5", "m", "5x", "5 m", "1h 30m", "-5m", "5m5", "1e3s", "⁵m"])
    assert.equal(parseDurationText(bad), null, JSON.stringify(bad));
});
