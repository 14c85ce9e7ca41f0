import type { Dirent } from "node:fs";
import { readdir, rename, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { NotFoundError, StoreError } from "../core/errors.js";
import { type Digest, isDigest, parseDigest } from "./digest.js";
import { fsyncDirectory, makeDirectory, renameDurably, writeNewFileSynced } from "./durable.js";
import type { IngestedFile } from "./ingest.js";
import type { StoreLayout } from "./layout.js";
import { acquireLock, type LockOptions } from "./lock.js";
import { type Manifest, readManifest, serializeManifest } from "./manifest.js";
import { type ModelName, parseModelName } from "./names.js";
import type { ImportedFile, StoreHooks, SweepResult } from "./storeTypes.js";
import { removeAbandonedTemporaryFiles, temporaryPath } from "./temporary.js";

/**
 * The store's files on disk: the lock, the sweep of what crashes left, blobs placed by rename and manifests written
 * atomically. ModelStore's use cases are made of these steps.
 */
export class StoreDisk {
  constructor(
    readonly layout: StoreLayout,
    private readonly hooks: StoreHooks,
    private readonly lockOptions: LockOptions,
  ) {}

  notFound(name: ModelName): NotFoundError {
    return new NotFoundError(`model "${name.display}" is not in the store at ${this.layout.home}`, "model_not_found");
  }

  async prepare(): Promise<void> {
    for (const directory of [this.layout.blobs, this.layout.manifests, this.layout.tmp]) {
      await makeDirectory(directory);
    }
  }

  /** Runs `action` holding the store lock, then sweeps what crashes and replacements left behind. */
  async withLock<T>(action: () => Promise<T>): Promise<{ value: T; swept: SweepResult }> {
    await this.prepare();
    const lock = await acquireLock(this.layout.lock, this.lockOptions);
    try {
      let value: T;
      try {
        value = await action();
      } catch (error) {
        await this.sweep().catch(() => undefined);
        throw error;
      }
      return { value, swept: await this.sweep() };
    } finally {
      await lock.release();
    }
  }

  /** Must hold the lock: then every blob a manifest needs is referenced by one already on disk. */
  async sweep(): Promise<SweepResult> {
    const temporaryFiles = await removeAbandonedTemporaryFiles(this.layout);
    const referenced = new Set<string>();
    for (const path of await this.manifestPaths()) {
      const manifest = await readManifest(path).catch(() => undefined);
      // A manifest we cannot read might reference any blob: delete none.
      if (manifest === undefined) return { temporaryFiles, blobs: [] };
      for (const file of manifest?.files ?? []) referenced.add(file.digest);
      if (manifest?.projector) referenced.add(manifest.projector.digest);
    }
    const blobs: Digest[] = [];
    for (const entry of await readdir(this.layout.blobs)) {
      // Files we did not name are not ours to delete.
      if (!entry.startsWith("sha256-") || !isDigest(entry)) continue;
      const digest = parseDigest(entry);
      if (referenced.has(digest)) continue;
      await rm(this.layout.blobPath(digest), { force: true });
      blobs.push(digest);
    }
    if (blobs.length > 0) await fsyncDirectory(this.layout.blobs);
    return { temporaryFiles, blobs };
  }

  /** Moves a hashed temporary file to its blob path, or keeps the blob already there (same digest, same bytes). */
  async placeBlob(file: IngestedFile): Promise<Omit<ImportedFile, "filename" | "linked">> {
    const path = this.layout.blobPath(file.digest);
    const existing = await stat(path).catch(() => null);
    // Blobs only ever appear by rename, so one of the right size is complete.
    const reused = existing?.isFile() === true && existing.size === file.size;
    if (reused) await rm(file.temporaryPath, { force: true });
    else await rename(file.temporaryPath, path);
    return { digest: file.digest, size: file.size, path, reused };
  }

  async writeManifest(name: ModelName, manifest: Manifest): Promise<void> {
    const target = this.layout.manifestPath(name);
    await makeDirectory(dirname(target));
    const temporary = temporaryPath(this.layout, "manifest");
    try {
      await writeNewFileSynced(temporary, serializeManifest(manifest));
      await this.hooks.beforeManifestRename?.();
      await renameDurably(temporary, target);
    } finally {
      await rm(temporary, { force: true });
    }
  }

  /** Writes `name`'s manifest; true when the name already pointed at a model (now replaced). */
  async replaceManifest(name: ModelName, manifest: Manifest): Promise<boolean> {
    const replaced = (await stat(this.layout.manifestPath(name)).catch(() => null)) !== null;
    await this.writeManifest(name, manifest);
    return replaced;
  }

  /** Reads a manifest and checks that its name maps back to where it lies (so a moved or edited file is refused). */
  async readOwnManifest(path: string): Promise<Manifest | null> {
    const manifest = await readManifest(path);
    if (manifest === null) return null;
    let belongs = false;
    try {
      belongs = this.layout.manifestPath(parseModelName(manifest.name)) === path;
    } catch {
      belongs = false;
    }
    if (!belongs) {
      throw new StoreError(
        `manifest ${path} names the model ${JSON.stringify(manifest.name)}, which does not belong there; remove the file`,
        "corrupt_manifest",
        500,
      );
    }
    return manifest;
  }

  /** Every file at manifests/<host>/<namespace>/<model>/<tag>.json, sorted. */
  async manifestPaths(): Promise<string[]> {
    const found: string[] = [];
    const walk = async (directory: string, depth: number): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(directory, { withFileTypes: true });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
        throw error;
      }
      for (const entry of entries) {
        const path = join(directory, entry.name);
        if (depth < 3 && entry.isDirectory()) await walk(path, depth + 1);
        else if (depth === 3 && entry.isFile() && entry.name.endsWith(".json")) found.push(path);
      }
    };
    await walk(this.layout.manifests, 0);
    return found.sort();
  }

  /** Removes now-empty model, namespace and host directories, stopping at manifests/. */
  async removeEmptyDirectories(directory: string): Promise<void> {
    for (let current = directory; current.startsWith(this.layout.manifests + sep); current = dirname(current)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
    }
  }
}
