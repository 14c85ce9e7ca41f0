import assert from "node:assert/strict";
import { test } from "node:test";
import { ALL_CORES_FROM_PARAMETERS, chooseThreads, physicalCores } from "./threads.js";

test("tiny models decode on one thread whatever the machine (a second thread costs them 10-30x)", () => {
  for (const cores of [1, 2, 8, 64]) {
    assert.equal(chooseThreads({ parameters: 300_000 }, cores), 1);
    assert.equal(chooseThreads({ parameters: 30_000_000 }, cores), 1);
    assert.equal(chooseThreads({ parameters: ALL_CORES_FROM_PARAMETERS - 1 }, cores), 1);
  }
});

test("models of 100M parameters and more get every physical core, as llama.cpp's default", () => {
  // The 135M shape, the 1B shape and a 7B model, on 1, 2 and 16 physical cores.
  for (const parameters of [ALL_CORES_FROM_PARAMETERS, 163_000_000, 1_235_814_400, 7_000_000_000]) {
    assert.equal(chooseThreads({ parameters }, 1), 1);
    assert.equal(chooseThreads({ parameters }, 2), 2);
    assert.equal(chooseThreads({ parameters }, 16), 16);
  }
  assert.equal(chooseThreads({ parameters: 1_235_814_400 }, 0), 1, "never zero threads");
});

test("physical cores: hyper-threads that share a core count once, and never more than this process may use", () => {
  // 4 cores with 2 hardware threads each (sysfs lists each core's sibling mask once per thread).
  const smt = () => ["03", "0c", "30", "c0", "03", "0c", "30", "c0"];
  assert.equal(physicalCores(8, smt), 4);
  assert.equal(physicalCores(2, smt), 2, "an affinity mask or cgroup limit of 2 CPUs");
  // This project's machines: 2 vCPUs, one thread per core.
  assert.equal(
    physicalCores(2, () => ["1", "2"]),
    2,
  );
  // No sysfs (macOS, Windows): every usable CPU.
  assert.equal(
    physicalCores(12, () => undefined),
    12,
  );
  assert.equal(
    physicalCores(12, () => []),
    12,
  );
  assert.ok(physicalCores() >= 1);
});
