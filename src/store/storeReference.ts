import { realpath, stat } from "node:fs/promises";
import { basename } from "node:path";
import { StoreError } from "../core/errors.js";
import { hashFile, type OnBytes } from "./ingest.js";
import type { ManifestFile } from "./manifest.js";
import type { ImportedFile } from "./storeTypes.js";

/**
 * One file imported by reference (`import --link`): hashed where it is, recorded with where, how big and how
 * recent it was, so a later change is caught on load (storeChecks.ts `checkFile`) and by `freehold verify`.
 * Model shards and a vision projector are referenced the same way.
 */
export async function referenceFile(
  path: string,
  onBytes?: OnBytes,
): Promise<{ file: ImportedFile; entry: ManifestFile }> {
  const real = await realpath(path);
  const before = await stat(real);
  const { digest, size } = await hashFile(real, onBytes);
  const after = await stat(real);
  if (after.mtimeMs !== before.mtimeMs || after.size !== size) {
    throw new StoreError(
      `${real} changed while it was hashed; import it again when nothing writes to it`,
      "file_changed",
    );
  }
  return {
    file: { digest, size, filename: basename(path), path: real, linked: true, reused: false },
    entry: { digest, size, filename: basename(path), link: { path: real, size, mtimeMs: after.mtimeMs } },
  };
}
