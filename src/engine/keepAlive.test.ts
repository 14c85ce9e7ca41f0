import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { KeepAlive } from "./keepAlive.js";

describe("keep-alive", () => {
  test("a positive duration unloads after it, and says when", async () => {
    const keepAlive = new KeepAlive(40, () => 1_000);
    let unloaded = 0;
    keepAlive.idle(() => unloaded++);
    assert.equal(keepAlive.expiresAt, 1_040);
    await sleep(10);
    assert.equal(unloaded, 0);
    await sleep(60);
    assert.equal(unloaded, 1);
    assert.equal(keepAlive.expiresAt, null);
  });

  test("0 unloads at once; a negative duration never", () => {
    let unloaded = 0;
    new KeepAlive(0).idle(() => unloaded++);
    assert.equal(unloaded, 1);
    const forever = new KeepAlive(-1);
    forever.idle(() => unloaded++);
    assert.equal(unloaded, 1);
    assert.equal(forever.expiresAt, null);
  });

  test("the last request's keep_alive wins; undefined keeps the current one", () => {
    const keepAlive = new KeepAlive(300_000);
    keepAlive.set(undefined);
    assert.equal(keepAlive.duration, 300_000);
    keepAlive.set(0);
    keepAlive.set(undefined);
    assert.equal(keepAlive.duration, 0);
    keepAlive.set(-1);
    assert.equal(keepAlive.duration, -1);
  });

  test("a request arriving cancels the pending unload", async () => {
    const keepAlive = new KeepAlive(20);
    let unloaded = 0;
    keepAlive.idle(() => unloaded++);
    keepAlive.cancel();
    assert.equal(keepAlive.expiresAt, null);
    await sleep(50);
    assert.equal(unloaded, 0);
  });

  test("going idle twice re-arms one timer, not two", async () => {
    const keepAlive = new KeepAlive(20);
    let unloaded = 0;
    keepAlive.idle(() => unloaded++);
    keepAlive.idle(() => unloaded++);
    await sleep(60);
    assert.equal(unloaded, 1);
  });
});
