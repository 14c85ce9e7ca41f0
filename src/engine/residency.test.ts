import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { FreeholdError, OverloadedError } from "../core/errors.js";
import type { MemoryEstimate } from "./memory.js";
import { Residency, type Resident } from "./residency.js";

const MiB = 1024 * 1024;

function estimate(total: number): MemoryEstimate {
  return { weights: total - MiB, kvCache: MiB, overhead: 0, total, contextSize: 2048 };
}

function candidate(total: number) {
  return { name: "new", estimate: estimate(total), contextSetting: "--context-size" };
}

/** Residents that disappear when evicted, as the engine's slots do. */
function loaded(list: Resident[]) {
  const residents = [...list];
  const evicted: string[] = [];
  return {
    evicted,
    residents: () => residents,
    evict: async (name: string) => {
      evicted.push(name);
      residents.splice(
        residents.findIndex((r) => r.name === name),
        1,
      );
    },
  };
}

function residency(memoryBudget: number, free = Number.MAX_SAFE_INTEGER, total = 16_000 * MiB): Residency {
  return new Residency({ memoryBudget, totalMemory: () => total, freeMemory: () => free, sequences: 4 });
}

describe("residency", () => {
  test("budget 0 means 90% of the machine's memory", () => {
    assert.equal(residency(0, 0, 1000 * MiB).budget(), Math.floor(1000 * MiB * 0.9));
    assert.equal(residency(123).budget(), 123);
  });

  test("a model bigger than the whole budget is refused with insufficient_memory (500) and nothing is evicted", async () => {
    const fake = loaded([{ name: "a", memory: 10 * MiB, busy: false, lastUsed: 1 }]);
    await assert.rejects(residency(100 * MiB).makeRoom(candidate(200 * MiB), fake.residents, fake.evict), (error) => {
      assert.ok(error instanceof FreeholdError && !(error instanceof OverloadedError));
      assert.equal(error.code, "insufficient_memory");
      assert.equal(error.status, 500);
      assert.match(
        error.message,
        /new needs about 200 MiB .*4 slot\(s\) of 2048 tokens.*budget of 100 MiB.*--context-size/,
      );
      return true;
    });
    assert.deepEqual(fake.evicted, []);
  });

  test("evicts idle models least recently used first, only as many as needed", async () => {
    const fake = loaded([
      { name: "recent", memory: 40 * MiB, busy: false, lastUsed: 30 },
      { name: "oldest", memory: 40 * MiB, busy: false, lastUsed: 10 },
      { name: "middle", memory: 40 * MiB, busy: false, lastUsed: 20 },
    ]);
    await residency(150 * MiB).makeRoom(candidate(60 * MiB), fake.residents, fake.evict);
    // 120 used + 60 > 150: one eviction (the oldest) makes 80 + 60 fit.
    assert.deepEqual(fake.evicted, ["oldest"]);
  });

  test("busy models are never evicted: 503 insufficient_memory_busy with Retry-After", async () => {
    const fake = loaded([
      { name: "busy-old", memory: 80 * MiB, busy: true, lastUsed: 1 },
      { name: "idle", memory: 10 * MiB, busy: false, lastUsed: 5 },
    ]);
    await assert.rejects(residency(100 * MiB).makeRoom(candidate(50 * MiB), fake.residents, fake.evict), (error) => {
      assert.ok(error instanceof OverloadedError);
      assert.equal(error.code, "insufficient_memory_busy");
      assert.equal(error.retryAfterSeconds, 5);
      assert.match(error.message, /needs about 50 MiB, 20 MiB available/);
      return true;
    });
    assert.deepEqual(fake.evicted, ["idle"], "the idle one went first, and it was not enough");
  });

  test("the machine's free memory limits too, and what an eviction frees counts toward it", async () => {
    const fake = loaded([
      { name: "a", memory: 30 * MiB, busy: false, lastUsed: 1 },
      { name: "b", memory: 30 * MiB, busy: false, lastUsed: 2 },
    ]);
    // Budget has room (1 GiB) but only 20 MiB is free: evict until 20 + freed ≥ 70.
    await residency(1024 * MiB, 20 * MiB).makeRoom(candidate(70 * MiB), fake.residents, fake.evict);
    assert.deepEqual(fake.evicted, ["a", "b"]);
  });

  test("a model that fits loads without evicting anything", async () => {
    const fake = loaded([{ name: "a", memory: 30 * MiB, busy: false, lastUsed: 1 }]);
    await residency(100 * MiB).makeRoom(candidate(70 * MiB), fake.residents, fake.evict);
    assert.deepEqual(fake.evicted, []);
  });

  test("residents are re-read after each eviction: one that turned busy meanwhile is spared", async () => {
    const list: Resident[] = [
      { name: "a", memory: 40 * MiB, busy: false, lastUsed: 1 },
      { name: "b", memory: 40 * MiB, busy: false, lastUsed: 2 },
    ];
    const evicted: string[] = [];
    const evict = async (name: string) => {
      evicted.push(name);
      list.splice(
        list.findIndex((r) => r.name === name),
        1,
      );
      list[0]!.busy = true; // a request arrived for b while a was stopping
    };
    await assert.rejects(
      residency(100 * MiB).makeRoom(candidate(90 * MiB), () => list, evict),
      { code: "insufficient_memory_busy" },
    );
    assert.deepEqual(evicted, ["a"]);
  });
});
