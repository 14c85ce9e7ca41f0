import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { formatRelativeTime, formatSize } from "./humanize.js";

describe("formatSize", () => {
  for (const [bytes, text] of [
    [0, "0 B"],
    [999, "999 B"],
    [1000, "1.0 KB"],
    [1_185_376, "1.2 MB"],
    [9_960_000, "10 MB"],
    [170_000_000, "170 MB"],
    [4_700_000_000, "4.7 GB"],
  ] as const) {
    test(`${bytes} bytes is ${text}`, () => assert.equal(formatSize(bytes), text));
  }
});

describe("formatRelativeTime", () => {
  const now = new Date("2025-06-01T12:00:00Z");
  const ago = (seconds: number) => formatRelativeTime(new Date(now.getTime() - seconds * 1000), now);
  for (const [seconds, text] of [
    [-30, "just now"],
    [2, "just now"],
    [30, "30 seconds ago"],
    [60, "1 minute ago"],
    [150, "2 minutes ago"],
    [3 * 3600, "3 hours ago"],
    [86_400, "1 day ago"],
    [15 * 86_400, "2 weeks ago"],
    [61 * 86_400, "2 months ago"],
    [400 * 86_400, "1 year ago"],
  ] as const) {
    test(`${seconds} s ago is "${text}"`, () => assert.equal(ago(seconds), text));
  }
});
