import assert from "node:assert/strict";
import { test } from "node:test";
import { mcnemar, percentile, signTest, wilsonInterval } from "./stats.js";

test("Wilson intervals match the textbook values", () => {
  // Reference values from the closed form (Newcombe 1998, method 3).
  const close = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-9, `${actual}`);
  const tenOfTen = wilsonInterval(10, 10);
  close(tenOfTen.low, 0.7224672001371107); // 1 / (1 + z²/10)
  assert.equal(tenOfTen.high, 1);
  const fourOfFive = wilsonInterval(4, 5);
  close(fourOfFive.low, 0.37553462976252533);
  close(fourOfFive.high, 0.9637758913675698);
  assert.deepEqual(wilsonInterval(0, 0), { low: 0, high: 1 });
  assert.equal(wilsonInterval(0, 20).low, 0);
});

test("percentiles interpolate between ranks", () => {
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([5], 95), 5);
  assert.equal(percentile([4, 1, 3, 2], 50), 2.5);
  assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 95), 10.5);
});

test("the sign test is exact for small samples", () => {
  assert.equal(signTest(0, 0), 1);
  assert.equal(signTest(0, 5), 0.0625);
  assert.equal(signTest(5, 5), 0.0625);
  assert.equal(signTest(0, 7), 0.015625);
  assert.equal(signTest(1, 10), 0.021484375); // 2 × (1 + 10) / 1024
  assert.equal(signTest(3, 6), 1);
  const large = signTest(40, 100);
  assert.ok(Math.abs(large - 0.056888) < 1e-5, `${large}`);
});

test("McNemar counts only the cases where the models disagree", () => {
  const pairs = [
    ...Array.from({ length: 6 }, () => ({ candidate: false, baseline: true })),
    ...Array.from({ length: 20 }, () => ({ candidate: true, baseline: true })),
    { candidate: false, baseline: false },
  ];
  const worse = mcnemar(pairs);
  assert.equal(worse.baselineOnly, 6);
  assert.equal(worse.candidateOnly, 0);
  assert.equal(worse.pValue, 0.03125);
  assert.equal(worse.significantlyWorse, true);
  assert.equal(worse.significantlyBetter, false);
  const even = mcnemar([
    { candidate: true, baseline: false },
    { candidate: false, baseline: true },
  ]);
  assert.equal(even.pValue, 1);
  assert.equal(even.significantlyWorse, false);
});
