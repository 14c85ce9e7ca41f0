import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { OverloadedError } from "../core/errors.js";
import { AdmissionQueue } from "./admission.js";

function queue(maxQueue = 4, timeoutMs = 10_000): AdmissionQueue {
  return new AdmissionQueue({ name: "m", maxQueue, timeoutMs });
}

describe("admission queue", () => {
  test("admits up to capacity at once, then queues in FIFO order and hands each freed slot to the oldest", async () => {
    const q = queue();
    await q.admit(2);
    await q.admit(2);
    assert.equal(q.active, 2);
    const order: number[] = [];
    const waiting = [1, 2, 3].map((n) => q.admit(2).then(() => order.push(n)));
    assert.equal(q.queued, 3);
    assert.equal(q.release(), false, "a waiter took the slot: not idle");
    await waiting[0];
    assert.deepEqual(order, [1]);
    assert.equal(q.release(), false);
    assert.equal(q.release(), false);
    await Promise.all(waiting);
    assert.deepEqual(order, [1, 2, 3]);
    assert.equal(q.active, 2);
    assert.equal(q.queued, 0);
    assert.equal(q.release(), false, "one still runs");
    assert.equal(q.release(), true, "the last one out leaves it idle");
    assert.equal(q.idle, true);
  });

  test("a newcomer never jumps the queue even when a slot is momentarily free", async () => {
    const q = queue();
    await q.admit(1);
    const first = q.admit(1);
    // The slot frees and goes to the waiter, not to a request arriving in the same turn.
    q.release();
    const second = q.admit(1);
    await first;
    assert.equal(q.active, 1);
    assert.equal(q.queued, 1);
    q.release();
    await second;
  });

  test("past maxQueue waiting, a 503 queue_full at once (Retry-After 2)", async () => {
    const q = queue(1);
    await q.admit(1);
    const waiting = q.admit(1);
    await assert.rejects(q.admit(1), (error: unknown) => {
      assert.ok(error instanceof OverloadedError);
      assert.equal(error.code, "queue_full");
      assert.equal(error.status, 503);
      assert.equal(error.retryAfterSeconds, 2);
      assert.match(error.message, /m is busy: all 1 slot\(s\) are answering and 1 request\(s\) are waiting/);
      return true;
    });
    q.release();
    await waiting;
  });

  test("maxQueue 0 refuses at once when every slot is busy", async () => {
    const q = queue(0);
    await q.admit(1);
    await assert.rejects(q.admit(1), { code: "queue_full" });
  });

  test("a waiter past the timeout gets 503 queue_timeout and leaves the queue", async () => {
    const q = queue(4, 30);
    await q.admit(1);
    await assert.rejects(q.admit(1), (error: unknown) => {
      assert.ok(error instanceof OverloadedError);
      assert.equal(error.code, "queue_timeout");
      assert.equal(error.retryAfterSeconds, 5);
      return true;
    });
    assert.equal(q.queued, 0);
    assert.equal(q.release(), true);
  });

  test("a client that gives up leaves the queue at once with its reason; an aborted one never queues", async () => {
    const q = queue();
    await q.admit(1);
    const controller = new AbortController();
    const waiting = q.admit(1, controller.signal);
    assert.equal(q.queued, 1);
    controller.abort(new Error("client went away"));
    await assert.rejects(waiting, /client went away/);
    assert.equal(q.queued, 0);
    await assert.rejects(q.admit(1, AbortSignal.abort(new Error("already gone"))), /already gone/);
    assert.equal(q.queued, 0);
    assert.equal(q.release(), true);
  });

  test("enter() holds the model without a slot check (preload, token counts) and counts as running", () => {
    const q = queue();
    q.enter();
    assert.equal(q.idle, false);
    assert.equal(q.release(), true);
  });
});
