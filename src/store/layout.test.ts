import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { StoreError } from "../core/errors.js";
import { StoreLayout } from "./layout.js";
import { parseModelName } from "./names.js";

const home = "/srv/freehold-home";
const layout = new StoreLayout(home);

describe("StoreLayout", () => {
  test("blob and manifest paths", () => {
    const hex = "ab".repeat(32);
    assert.equal(layout.blobPath(`sha256:${hex}`), join(home, "blobs", `sha256-${hex}`));
    assert.equal(
      layout.manifestPath(parseModelName("Stories")),
      join(home, "manifests", "_", "_", "stories", "latest.json"),
    );
    assert.equal(
      layout.manifestPath(parseModelName("owner/repo:Q4_K_M")),
      join(home, "manifests", "_", "owner", "repo", "q4_k_m.json"),
    );
    assert.equal(
      layout.manifestPath(parseModelName("hf.co/owner/repo:Q4_K_M")),
      join(home, "manifests", "hf.co", "owner", "repo", "q4_k_m.json"),
    );
  });

  test("names that differ only in case share a manifest; different names never do", () => {
    const names = ["a", "A:latest", "a:b", "x/a", "x/y/a", "y/x/a", "a.b", "a/b", "ab", "a_b", "a-b"];
    const paths = new Map<string, string>();
    for (const name of names) {
      const parsed = parseModelName(name);
      const path = layout.manifestPath(parsed);
      const other = paths.get(path);
      if (other !== undefined) assert.equal(parseModelName(other).key, parsed.key, `${name} collides with ${other}`);
      paths.set(path, name);
    }
    assert.equal(paths.size, names.length - 1);
  });

  test("refuses any path outside home", () => {
    for (const segments of [[".."], ["..", "x"], ["blobs", "..", "..", "etc"], ["/etc/passwd"], [""]]) {
      assert.throws(() => layout.inside(...segments), StoreError, `inside(${segments.join(", ")})`);
    }
    assert.equal(layout.inside("blobs", "x"), join(home, "blobs", "x"));
  });
});
