import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { temporaryDirectory } from "../../test/helpers/paths.js";
import { StoreError } from "../core/errors.js";
import { acquireLock, isProcessAlive } from "./lock.js";

const directory = temporaryDirectory("freehold-lock-test-");
after(directory.dispose);
let counter = 0;
const lockPath = () => join(directory.path, `store-${counter++}.lock`);

/** The pid of a process that has exited (so it is certainly not alive, barring pid reuse within milliseconds). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(child.stdout);
}

function writeHolder(path: string, holder: { pid: number; hostname?: string; nonce?: string }): void {
  writeFileSync(
    path,
    JSON.stringify({ hostname: hostname(), acquiredAt: "2020-01-01T00:00:00.000Z", nonce: "other", ...holder }),
  );
}

describe("acquireLock", () => {
  test("creates the lock file with our pid and removes it on release", async () => {
    const path = lockPath();
    const lock = await acquireLock(path);
    const owner = JSON.parse(readFileSync(path, "utf8"));
    assert.equal(owner.pid, process.pid);
    assert.equal(owner.nonce, lock.owner.nonce);
    await lock.release();
    assert.equal(existsSync(path), false);
  });

  test("a second holder waits until the first releases", async () => {
    const path = lockPath();
    const first = await acquireLock(path);
    let secondHeld = false;
    const second = acquireLock(path, { retryMs: 10 }).then((lock) => {
      secondHeld = true;
      return lock;
    });
    await new Promise((resolve) => setTimeout(resolve, 150));
    assert.equal(secondHeld, false);
    await first.release();
    const lock = await second;
    assert.equal(JSON.parse(readFileSync(path, "utf8")).nonce, lock.owner.nonce);
    await lock.release();
  });

  test("a live holder makes us give up after the timeout, naming it", async () => {
    const path = lockPath();
    writeHolder(path, { pid: process.pid });
    await assert.rejects(acquireLock(path, { timeoutMs: 150, retryMs: 10 }), (error: unknown) => {
      assert.ok(error instanceof StoreError);
      assert.equal(error.code, "store_locked");
      assert.equal(error.status, 409);
      assert.match(error.message, new RegExp(`process ${process.pid} \\(since 2020-01-01T00:00:00.000Z\\) holds`));
      assert.match(error.message, /remove the lock file/);
      return true;
    });
    assert.equal(JSON.parse(readFileSync(path, "utf8")).nonce, "other", "the live holder's lock is untouched");
  });

  test("a lock whose process is gone is taken over", async () => {
    const path = lockPath();
    const pid = deadPid();
    assert.equal(isProcessAlive(pid), false);
    writeHolder(path, { pid });
    const lock = await acquireLock(path, { timeoutMs: 1000 });
    assert.equal(JSON.parse(readFileSync(path, "utf8")).pid, process.pid);
    await lock.release();
    assert.equal(existsSync(`${path}.break`), false);
  });

  test("a lock held on another machine is never taken over", async () => {
    const path = lockPath();
    writeHolder(path, { pid: deadPid(), hostname: "some-other-host" });
    await assert.rejects(acquireLock(path, { timeoutMs: 100, retryMs: 10 }), /process \d+ on some-other-host/);
  });

  test("an empty lock file is waited for while fresh and taken over once old", async () => {
    const path = lockPath();
    writeFileSync(path, "");
    await assert.rejects(acquireLock(path, { timeoutMs: 100, retryMs: 10 }), /has not yet said who it is/);
    const old = new Date(Date.now() - 60_000);
    utimesSync(path, old, old);
    const lock = await acquireLock(path, { timeoutMs: 1000 });
    await lock.release();
  });

  test("release leaves a lock that is not ours alone", async () => {
    const path = lockPath();
    const lock = await acquireLock(path);
    writeHolder(path, { pid: process.pid, nonce: "someone-else" });
    await lock.release();
    assert.equal(JSON.parse(readFileSync(path, "utf8")).nonce, "someone-else");
  });
});
