import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { after, describe, test } from "node:test";
import { ModelStore } from "../src/store/index.js";
import { writeSmallGguf } from "./helpers/gguf.js";
import { projectRoot, temporaryDirectory } from "./helpers/paths.js";

const directory = temporaryDirectory("freehold-store-processes-");
after(directory.dispose);
const inputs = join(directory.path, "inputs");
mkdirSync(inputs);
const modelA = writeSmallGguf(join(inputs, "a.gguf"), 11);
const modelB = writeSmallGguf(join(inputs, "b.gguf"), 12);
const modelC = writeSmallGguf(join(inputs, "c.gguf"), 13);
let counter = 0;

function digestOf(path: string): string {
  return `sha256:${createHash("sha256").update(readFileSync(path)).digest("hex")}`;
}
const blobName = (path: string) => digestOf(path).replace(":", "-");

interface WorkerResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runWorker(args: string[]): Promise<WorkerResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", resolve(projectRoot, "test/helpers/storeWorker.ts"), ...args],
      { cwd: projectRoot, stdio: ["ignore", "pipe", "pipe"] },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
    });
    child.stderr.on("data", (chunk) => {
      stderr += chunk;
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolvePromise({ code, signal, stdout, stderr }));
  });
}

const list = (path: string) => (existsSync(path) ? readdirSync(path).sort() : []);

describe("the store across processes", () => {
  const points = ["afterTempWritten", "afterBlobWritten", "beforeManifestRename"] as const;
  for (const point of points) {
    for (const how of ["exit", "kill"] as const) {
      test(`a crash (${how}) at ${point} while replacing a model leaves the old state, and the store recovers`, async () => {
        const home = join(directory.path, `crash-${counter++}`);
        await new ModelStore({ home }).import(modelA, "model");

        const crashed = await runWorker([home, modelB, "model", point, how]);
        if (how === "exit") assert.equal(crashed.code, 70, crashed.stderr);
        else assert.equal(crashed.signal, "SIGKILL", crashed.stderr);

        // What the crash left behind shows the hook really ran where it says.
        const leftovers = list(join(home, "tmp"));
        const blobs = list(join(home, "blobs"));
        if (point === "afterTempWritten") {
          assert.equal(leftovers.length, 1);
          assert.match(leftovers[0]!, /\.blob$/);
          assert.deepEqual(blobs, [blobName(modelA)]);
          assert.equal(existsSync(join(home, "store.lock")), false, "the lock is not held while copying");
        } else {
          assert.deepEqual(blobs, [blobName(modelA), blobName(modelB)].sort());
          assert.equal(existsSync(join(home, "store.lock")), true, "the dead process still holds the lock");
          if (point === "beforeManifestRename") assert.match(leftovers.join(), /\.manifest$/);
        }

        // The old state, exactly: the name still means model A, and nothing half-written is visible.
        const store = new ModelStore({ home, lock: { timeoutMs: 5000 } });
        const models = await store.list();
        assert.deepEqual(
          models.map((model) => [model.name, model.digest]),
          [["model:latest", digestOf(modelA)]],
        );
        assert.deepEqual(await store.resolve("model"), [join(home, "blobs", blobName(modelA))]);

        // Another operation takes over the dead process's lock and sweeps its leftovers.
        await store.import(modelC, "other");
        assert.deepEqual(list(join(home, "tmp")), []);
        assert.deepEqual(list(join(home, "blobs")), [blobName(modelA), blobName(modelC)].sort());

        // Importing again works and gives the new state.
        await store.import(modelB, "model");
        assert.equal((await store.show("model")).manifest.files[0]!.digest, digestOf(modelB));
        assert.deepEqual(list(join(home, "blobs")), [blobName(modelB), blobName(modelC)].sort());
        assert.equal(existsSync(join(home, "store.lock")), false);
      });
    }
  }

  test("concurrent imports from several processes leave every manifest valid and every blob accounted for", async () => {
    for (let round = 0; round < 2; round++) {
      const home = join(directory.path, `concurrent-${counter++}`);
      const jobs: [string, string][] = [
        [modelA, "x"],
        [modelB, "x"],
        [modelC, "y"],
        [modelA, "z"],
      ];
      const results = await Promise.all(jobs.map(([file, name]) => runWorker([home, file, name, "slow"])));
      for (const result of results) assert.equal(result.code, 0, result.stderr);
      // Each worker lingered 150 ms inside the lock; those stays must not overlap.
      const stays = results
        .map((result) => JSON.parse(result.stdout) as { enteredAt: number; leftAt: number })
        .sort((a, b) => a.enteredAt - b.enteredAt);
      for (const [i, stay] of stays.entries()) {
        assert.ok(stay.leftAt >= stay.enteredAt + 150);
        if (i > 0) assert.ok(stay.enteredAt >= stays[i - 1]!.leftAt, "two processes held the lock at once");
      }

      const store = new ModelStore({ home });
      const models = await store.list();
      assert.deepEqual(models.map((model) => model.name).sort(), ["x:latest", "y:latest", "z:latest"]);
      const x = (await store.show("x")).manifest.files[0]!.digest;
      assert.ok([digestOf(modelA), digestOf(modelB)].includes(x), "x is one of the two imports, whole");
      assert.equal((await store.show("y")).manifest.files[0]!.digest, digestOf(modelC));
      assert.equal((await store.show("z")).manifest.files[0]!.digest, digestOf(modelA));
      const referenced = new Set(models.map((model) => model.digest.replace(":", "-")));
      assert.deepEqual(list(join(home, "blobs")), [...referenced].sort(), "no orphaned or missing blobs");
      for (const model of models) await store.resolve(model.name);
      assert.deepEqual(list(join(home, "tmp")), []);
      assert.equal(existsSync(join(home, "store.lock")), false);
    }
  });
});
