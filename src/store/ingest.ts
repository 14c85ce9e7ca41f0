import { createHash } from "node:crypto";
import { type FileHandle, link, open, realpath } from "node:fs/promises";
import type { Digest } from "./digest.js";

export interface IngestedFile {
  /** The complete, synced copy (or hard link) inside the store's tmp/, ready to be renamed into blobs/. */
  temporaryPath: string;
  digest: Digest;
  size: number;
  linked: boolean;
}

const CHUNK_BYTES = 8 * 1024 * 1024;

/**
 * Brings one file into the store's tmp/: a copy hashed as it is written, or, with `link`, a hard link (still hashed,
 * since the digest must describe the bytes). A link that cannot be made (another device, a file system without
 * links) falls back to a copy. Either way the file is synced before this returns.
 */
export async function ingestFile(
  source: string,
  temporaryPath: string,
  options: { link: boolean; onBytes?: OnBytes },
): Promise<IngestedFile> {
  if (options.link && (await tryLink(source, temporaryPath))) {
    return { temporaryPath, ...(await hashAndSync(temporaryPath, options.onBytes)), linked: true };
  }
  return { temporaryPath, ...(await copyHashing(source, temporaryPath, options.onBytes)), linked: false };
}

/** Called with the size of each chunk as it is hashed (for a progress bar over multi-GB files). */
export type OnBytes = (bytes: number) => void;

async function tryLink(source: string, destination: string): Promise<boolean> {
  try {
    // link(2) does not follow symbolic links: link the file itself, not a link to it.
    await link(await realpath(source), destination);
    return true;
  } catch (error) {
    // EXDEV (another device), EPERM/ENOTSUP (no links here), EMLINK (too many): a copy still works.
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw error;
    return false;
  }
}

/** Reads an open file to its end, hashing it; `each` gets every chunk before the next is read into the same buffer. */
async function hashHandle(
  handle: FileHandle,
  onBytes?: OnBytes,
  each?: (chunk: Buffer) => Promise<void>,
): Promise<{ digest: Digest; size: number }> {
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  let size = 0;
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, CHUNK_BYTES, null);
    if (bytesRead === 0) break;
    const chunk = buffer.subarray(0, bytesRead);
    hash.update(chunk);
    await each?.(chunk);
    size += bytesRead;
    onBytes?.(bytesRead);
  }
  return { digest: `sha256:${hash.digest("hex")}`, size };
}

/** The sha256 and size of a file's bytes. */
export async function hashFile(path: string, onBytes?: OnBytes): Promise<{ digest: Digest; size: number }> {
  const handle = await open(path, "r");
  try {
    return await hashHandle(handle, onBytes);
  } finally {
    await handle.close();
  }
}

async function hashAndSync(path: string, onBytes?: OnBytes): Promise<{ digest: Digest; size: number }> {
  const handle = await open(path, "r");
  try {
    const hashed = await hashHandle(handle, onBytes);
    // The linked data may never have been synced by whoever wrote it.
    await handle.sync();
    return hashed;
  } finally {
    await handle.close();
  }
}

async function copyHashing(
  source: string,
  destination: string,
  onBytes?: OnBytes,
): Promise<{ digest: Digest; size: number }> {
  const input = await open(source, "r");
  try {
    const output = await open(destination, "wx", 0o644);
    try {
      const hashed = await hashHandle(input, onBytes, async (chunk) => {
        let written = 0;
        while (written < chunk.length) {
          written += (await output.write(chunk, written, chunk.length - written, null)).bytesWritten;
        }
      });
      await output.sync();
      return hashed;
    } finally {
      await output.close();
    }
  } finally {
    await input.close();
  }
}
