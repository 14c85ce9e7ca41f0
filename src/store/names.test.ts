import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { StoreError } from "../core/errors.js";
import { parseModelName, sameModelName } from "./names.js";

describe("parseModelName", () => {
  test("a bare model gets the latest tag", () => {
    const name = parseModelName("stories");
    assert.deepEqual(
      { host: name.host, namespace: name.namespace, model: name.model, tag: name.tag, display: name.display },
      { host: null, namespace: null, model: "stories", tag: "latest", display: "stories:latest" },
    );
  });

  test("model:tag, namespace/model and host/namespace/model:tag", () => {
    assert.equal(parseModelName("demo:tiny").display, "demo:tiny");
    const namespaced = parseModelName("owner/repo");
    assert.equal(namespaced.namespace, "owner");
    assert.equal(namespaced.host, null);
    assert.equal(namespaced.display, "owner/repo:latest");
    const full = parseModelName("hf.co/owner/repo:Q4_K_M");
    assert.equal(full.host, "hf.co");
    assert.equal(full.namespace, "owner");
    assert.equal(full.model, "repo");
    assert.equal(full.tag, "Q4_K_M");
    assert.equal(full.display, "hf.co/owner/repo:Q4_K_M");
  });

  test("case is kept for display and ignored for comparison", () => {
    const name = parseModelName("Demo:Tiny");
    assert.equal(name.display, "Demo:Tiny");
    assert.equal(name.key, "demo:tiny");
    assert.ok(sameModelName("Demo:Tiny", "demo:tiny"));
    assert.ok(sameModelName("stories", "STORIES:latest"));
    assert.ok(!sameModelName("stories", "stories:v2"));
  });

  test("the longest allowed parts are accepted", () => {
    const part = "a".repeat(80);
    assert.equal(parseModelName(`${part}:${part}`).model, part);
  });

  const invalid: [string, string, RegExp][] = [
    ["empty", "", /it is empty/],
    ["dot-dot model", "..", /"\.\." is not allowed as a model/],
    ["dot-dot traversal", "../x", /"\.\." is not allowed as a namespace/],
    ["dot-dot in the middle", "a/../b", /"\.\." is not allowed/],
    ["dot model", "a/.", /"\." is not allowed as a model/],
    ["dot-dot tag", "model:..", /"\.\." is not allowed as a tag/],
    ["absolute path", "/etc/passwd", /absolute path/],
    ["NUL", "model\0x", /NUL/],
    ["percent-escape", "%2e%2e/x", /percent-escapes/],
    ["backslash", "a\\b", /backslash/],
    ["backslash traversal", "..\\..\\x", /backslash/],
    ["empty namespace", "a//b", /namespace is empty/],
    ["empty model", "owner/", /model is empty/],
    ["empty model before tag", ":tag", /model is empty/],
    ["empty tag", "model:", /tag is empty/],
    ["too many parts", "a/b/c/d", /4 parts/],
    ["two colons", "a:b:c", /more than one ":"/],
    ["host with a port", "localhost:5000/ns/model", /hosts with a port/],
    ["space", "my model", /may contain only letters/],
    ["leading dash", "-rf", /must start with a letter or digit/],
    ["leading underscore", "_/x", /must start with a letter or digit/],
    ["unicode", "modèle", /may contain only letters/],
    ["part too long", "a".repeat(81), /model is longer than 80/],
    ["tag too long", `m:${"t".repeat(81)}`, /tag is longer than 80/],
    ["whole too long", "a".repeat(300), /longer than 255/],
    [
      "whole too long with every part within bounds",
      `${"h".repeat(80)}/${"n".repeat(80)}/${"m".repeat(80)}:${"t".repeat(14)}`,
      /longer than 255/,
    ],
  ];
  for (const [what, input, pattern] of invalid) {
    test(`refuses ${what}`, () => {
      assert.throws(
        () => parseModelName(input),
        (error: unknown) => {
          assert.ok(error instanceof StoreError);
          assert.equal(error.code, "invalid_model_name");
          assert.match(error.message, /^invalid model name "/);
          assert.match(error.message, pattern);
          assert.ok(!error.message.includes("\0"), "the message shows NUL escaped");
          return true;
        },
      );
    });
  }

  test("a huge input gives a short message", () => {
    assert.throws(
      () => parseModelName("x".repeat(100_000)),
      (error: Error) => error.message.length < 300,
    );
  });
});
