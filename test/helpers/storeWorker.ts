// Runs one import in its own process, for the crash-injection and concurrency tests.
// Usage: storeWorker.ts HOME FILE NAME [CRASH_POINT [exit|kill] | slow]. A crash point is a StoreHooks key; the
// process dies there without running any cleanup, as it would on a power cut (kill) or an abrupt exit (exit, code 70).
// "slow" lingers inside the locked section and reports when it was there, so a test can check mutual exclusion.
import { setTimeout as sleep } from "node:timers/promises";
import { ModelStore, type StoreHooks } from "../../src/store/index.js";

const [home, file, name, crashAt, how = "exit"] = process.argv.slice(2);
if (!home || !file || !name) throw new Error("usage: storeWorker.ts HOME FILE NAME [CRASH_POINT [exit|kill]]");

const crash = (): never => {
  if (how === "kill") process.kill(process.pid, "SIGKILL");
  process.exit(70);
};
const points = ["afterTempWritten", "afterBlobWritten", "beforeManifestRename"] as const;
const hooks: StoreHooks = {};
const locked = { enteredAt: 0, leftAt: 0 };
if (crashAt === "slow") {
  hooks.afterBlobWritten = async () => {
    locked.enteredAt = Date.now();
    await sleep(150);
  };
  hooks.beforeManifestRename = () => {
    locked.leftAt = Date.now();
  };
} else if (crashAt !== undefined) {
  const point = points.find((candidate) => candidate === crashAt);
  if (!point) throw new Error(`unknown crash point ${crashAt}`);
  hooks[point] = crash;
}

const result = await new ModelStore({ home, hooks, lock: { timeoutMs: 60_000 } }).import(file, name);
process.stdout.write(JSON.stringify({ digests: result.files.map((entry) => entry.digest), ...locked }));
