import { randomBytes } from "node:crypto";
import { readdir, rm } from "node:fs/promises";
import type { StoreLayout } from "./layout.js";
import { isProcessAlive } from "./lock.js";

export type TemporaryKind = "blob" | "manifest";

// The writer's pid is in the name, so a cleaner can tell an abandoned file from one another process is still writing
// (imports copy outside the lock, which is held only for the final renames).
const temporaryPattern = /^(\d+)-[0-9a-f]{16}\.(blob|manifest)$/;

/** A fresh path in the store's tmp/ (same file system as the blobs, so the final rename is atomic). */
export function temporaryPath(layout: StoreLayout, kind: TemporaryKind): string {
  return layout.inside("tmp", `${process.pid}-${randomBytes(8).toString("hex")}.${kind}`);
}

/** Removes temporary files whose writing process no longer exists. Returns the names removed. */
export async function removeAbandonedTemporaryFiles(layout: StoreLayout): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(layout.tmp);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const removed: string[] = [];
  for (const name of names) {
    const match = temporaryPattern.exec(name);
    // Files we did not name are not ours to delete.
    if (!match || isProcessAlive(Number(match[1]))) continue;
    await rm(layout.inside("tmp", name), { force: true });
    removed.push(name);
  }
  return removed;
}
