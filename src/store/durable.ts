import { type FileHandle, mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";

const directorySyncUnsupported = new Set(["EPERM", "EISDIR", "EINVAL", "EBADF", "ENOTSUP"]);

/**
 * Flushes a directory's entries, so a rename or a new file in it survives a power loss. Some platforms (Windows) cannot
 * open a directory for syncing; there the rename is as durable as the platform makes it.
 */
export async function fsyncDirectory(path: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(path, "r");
    await handle.sync();
  } catch (error) {
    if (!directorySyncUnsupported.has((error as NodeJS.ErrnoException).code ?? "")) throw error;
  } finally {
    await handle?.close();
  }
}

/** mkdir -p that also syncs the parent of every directory it created, so the new entries are durable too. */
export async function makeDirectory(path: string): Promise<void> {
  const first = await mkdir(path, { recursive: true });
  if (first === undefined) return;
  const created: string[] = [];
  for (let directory = path; directory.length >= first.length; directory = dirname(directory)) {
    created.push(directory);
    if (directory === first) break;
  }
  for (const directory of created) await fsyncDirectory(dirname(directory));
}

/** Writes bytes to a new file (never an existing one) and syncs it before returning. */
export async function writeNewFileSynced(path: string, data: string | Uint8Array): Promise<void> {
  const handle = await open(path, "wx", 0o644);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Atomically replaces `target` with `temporary` (a complete, synced file in the same file system) and syncs the
 * directory, so afterwards a crash shows the new file, and before the rename the old one.
 */
export async function renameDurably(temporary: string, target: string): Promise<void> {
  await rename(temporary, target);
  await fsyncDirectory(dirname(target));
}

/** A text file's contents; null when it does not exist (any other failure is thrown). */
export async function readTextIfExists(path: string): Promise<string | null> {
  try {
    return await readFile(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}
