import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StoreError } from "../core/errors.js";
import { blobFileName, digestHex, isDigest, parseDigest } from "./digest.js";
import { StoreLayout } from "./layout.js";

const hex = "0123456789abcdef".repeat(4);

describe("digests", () => {
  test("the colon and the file-name forms normalize to sha256:<hex>", () => {
    assert.equal(parseDigest(`sha256:${hex}`), `sha256:${hex}`);
    assert.equal(parseDigest(`sha256-${hex}`), `sha256:${hex}`);
    assert.equal(digestHex(`sha256-${hex}`), hex);
    assert.equal(blobFileName(`sha256:${hex}`), `sha256-${hex}`);
  });

  const bad: [string, string][] = [
    ["empty", ""],
    ["no prefix", hex],
    ["other algorithm", `sha512:${hex}`],
    ["short", `sha256:${hex.slice(1)}`],
    ["long", `sha256:${hex}0`],
    ["uppercase hex", `sha256:${hex.toUpperCase()}`],
    ["non-hex", `sha256:${"g".repeat(64)}`],
    ["traversal", `sha256-../../../etc/passwd`],
    ["traversal after valid hex", `sha256:${hex}/../../x`],
    ["NUL", `sha256:${hex}\0`],
    ["newline", `sha256:${hex}\n`],
    ["slash separator", `sha256/${hex}`],
  ];
  for (const [what, input] of bad) {
    test(`refuses ${what} before it becomes a path`, () => {
      assert.equal(isDigest(input), false);
      const layout = new StoreLayout("/tmp/freehold-digest-test");
      for (const use of [() => parseDigest(input), () => blobFileName(input), () => layout.blobPath(input)]) {
        assert.throws(use, (error: unknown) => {
          assert.ok(error instanceof StoreError);
          assert.equal(error.code, "invalid_digest");
          assert.match(error.message, /^invalid digest .*64 lowercase hex digits/);
          return true;
        });
      }
    });
  }
});
