import assert from "node:assert/strict";
import { test } from "node:test";
import { parseProfile } from "./profileFile.js";

test("a YAML profile's kv_cache_type, flash_attention and draft (issue 14), and bad values naming the field", () => {
  const { profile } = parseProfile("from: base\nkv_cache_type: Q4_0\nflash_attention: on\ndraft: small\n");
  assert.deepEqual(profile, { kvCacheType: "q4_0", flashAttention: "on", draft: "small" });
  // YAML writers may spell flash attention as a boolean.
  assert.equal(parseProfile("from: base\nflash_attention: false\n").profile.flashAttention, "off");
  const refused: [string, RegExp, string][] = [
    ["kv_cache_type: q3_k", /kv_cache_type must be one of f16, q8_0, q4_0/, "kv_cache_type"],
    ["kv_cache_type: 8", /kv_cache_type must be one of/, "kv_cache_type"],
    ["flash_attention: maybe", /flash_attention must be one of auto, on, off/, "flash_attention"],
    ["kv_cache_type: q8_0\nflash_attention: off", /q8_0 KV cache needs flash attention/, "flash_attention"],
    ["draft: ./small.gguf", /is a file; import it first/, "from"],
    ["draft: 7", /draft must be a text/, "draft"],
  ];
  for (const [lines, message, param] of refused)
    assert.throws(
      () => parseProfile(`from: base\n${lines}\n`),
      (error: Error & { param?: string }) => message.test(error.message) && error.param === param,
      lines,
    );
});
