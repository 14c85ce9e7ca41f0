import { randomBytes } from "node:crypto";
import { open, readFile, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { StoreError } from "../core/errors.js";

/** What the lock file says about its holder. */
export interface LockOwner {
  pid: number;
  hostname: string;
  acquiredAt: string;
  /** Tells this acquisition apart from an earlier one by the same pid. */
  nonce: string;
}

export interface LockOptions {
  /** How long to wait for another process to finish before giving up. Default 30 s. */
  timeoutMs?: number;
  /** Pause between tries. Default 50 ms (plus jitter). */
  retryMs?: number;
}

export interface HeldLock {
  readonly owner: LockOwner;
  release(): Promise<void>;
}

// A lock file with no readable owner is one whose creator died between creating and writing it; give a live
// writer this long before treating it as stale.
const UNWRITTEN_GRACE_MS = 10_000;

/** True unless the process certainly does not exist (EPERM means it exists but belongs to someone else). */
export function isProcessAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

interface Holder {
  owner: LockOwner | null;
  mtimeMs: number;
}

async function readHolder(path: string): Promise<Holder | null> {
  try {
    const [text, info] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    let owner: LockOwner | null = null;
    try {
      const parsed = JSON.parse(text) as Partial<LockOwner>;
      if (typeof parsed.pid === "number" && typeof parsed.nonce === "string") owner = parsed as LockOwner;
    } catch {
      owner = null;
    }
    return { owner, mtimeMs: info.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

function isStale(holder: Holder): boolean {
  if (holder.owner === null) return Date.now() - holder.mtimeMs > UNWRITTEN_GRACE_MS;
  // A holder on another machine (a shared home on a network file system) cannot be checked: never steal it.
  if (holder.owner.hostname !== hostname()) return false;
  return !isProcessAlive(holder.owner.pid);
}

function sameHolder(a: Holder, b: Holder): boolean {
  return a.owner === null || b.owner === null
    ? a.owner === b.owner && a.mtimeMs === b.mtimeMs
    : a.owner.nonce === b.owner.nonce;
}

async function createExclusive(path: string, content: string): Promise<boolean> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, "wx", 0o644);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
  try {
    await handle.writeFile(content);
    await handle.sync();
    await handle.close();
    return true;
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(path, { force: true });
    throw error;
  }
}

/**
 * Removes a stale lock. Two waiters may both find the same stale lock; the `.break` file makes only one of them
 * remove it, and only if it is still the stale one (not a fresh lock the other waiter took meanwhile).
 */
async function breakStaleLock(path: string, stale: Holder): Promise<void> {
  const breaker = `${path}.break`;
  const owner: LockOwner = { pid: process.pid, hostname: hostname(), acquiredAt: new Date().toISOString(), nonce: "" };
  if (!(await createExclusive(breaker, JSON.stringify(owner)))) {
    const other = await readHolder(breaker);
    if (other !== null && isStale(other)) await rm(breaker, { force: true });
    else await sleep(5);
    return;
  }
  try {
    const current = await readHolder(path);
    if (current !== null && sameHolder(current, stale) && isStale(current)) await rm(path, { force: true });
  } finally {
    await rm(breaker, { force: true });
  }
}

function describe(holder: Holder): string {
  if (holder.owner === null) return "a process that has not yet said who it is";
  const { pid, acquiredAt } = holder.owner;
  const host = holder.owner.hostname === hostname() ? "" : ` on ${holder.owner.hostname}`;
  return `process ${pid}${host} (since ${acquiredAt})`;
}

/**
 * Takes an exclusive lock file (created with O_EXCL, holding pid, host, time and a nonce). A lock whose process is
 * gone is stale and taken over; a live one is waited for, up to the timeout, then a StoreError says who holds it.
 * @example
 * const lock = await acquireLock(`${home}/store.lock`);
 * try { … } finally { await lock.release(); }
 */
export async function acquireLock(path: string, options: LockOptions = {}): Promise<HeldLock> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const retryMs = options.retryMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  const owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    acquiredAt: new Date().toISOString(),
    nonce: randomBytes(12).toString("hex"),
  };
  for (;;) {
    if (await createExclusive(path, `${JSON.stringify(owner)}\n`)) {
      return { owner, release: () => releaseLock(path, owner) };
    }
    const holder = await readHolder(path);
    if (holder === null) continue;
    if (isStale(holder)) {
      await breakStaleLock(path, holder);
      continue;
    }
    if (Date.now() >= deadline) {
      throw new StoreError(
        `the model store is busy: ${describe(holder)} holds ${path}. Try again when it finishes; ` +
          "if that process no longer exists, remove the lock file.",
        "store_locked",
        409,
      );
    }
    await sleep(retryMs + Math.random() * retryMs);
  }
}

async function releaseLock(path: string, owner: LockOwner): Promise<void> {
  const holder = await readHolder(path);
  // Only remove our own lock: if it was (wrongly) taken over, the new holder keeps it.
  if (holder?.owner?.nonce === owner.nonce) await rm(path, { force: true });
}
