import type { Dirent } from "node:fs";
import { readdir, realpath, rename, rm, rmdir, stat } from "node:fs/promises";
import { basename, dirname, join, resolve, sep } from "node:path";
import { ModelFileError, NotFoundError, StoreError } from "../core/errors.js";
import type { ModelProfile } from "../core/profile.js";
import { type GgufFile, type ModelSummary, readGgufFile, summarizeModel } from "../gguf/index.js";
import { blobFileName, type Digest, isDigest, parseDigest } from "./digest.js";
import { fsyncDirectory, makeDirectory, renameDurably, writeNewFileSynced } from "./durable.js";
import { hashFile, type IngestedFile, ingestFile, type OnBytes } from "./ingest.js";
import { StoreLayout } from "./layout.js";
import { acquireLock, type LockOptions } from "./lock.js";
import { type Manifest, type ManifestFile, type ManifestSource, readManifest, serializeManifest } from "./manifest.js";
import { type ModelName, parseModelName } from "./names.js";
import { checkShardMetadata, findShards } from "./shards.js";
import { removeAbandonedTemporaryFiles, temporaryPath } from "./temporary.js";

/**
 * Test hooks at the points where a crash matters. A test makes one of them kill the process to check that the store
 * is left either as it was or as it would be after the operation.
 */
export interface StoreHooks {
  /** Import: every file is hashed into tmp/, before the lock is taken. */
  afterTempWritten?(): void | Promise<void>;
  /** Import: the blobs are in blobs/, before the manifest is written. */
  afterBlobWritten?(): void | Promise<void>;
  /** Import, copy: the new manifest is complete in tmp/, before it is renamed into place. */
  beforeManifestRename?(): void | Promise<void>;
}

export interface ModelStoreOptions {
  /** The data directory ($FREEHOLD_HOME). Nothing is written outside it. */
  home: string;
  lock?: LockOptions;
  hooks?: StoreHooks;
}

export interface ImportOptions {
  /**
   * Hard-link the file into the store instead of copying it, where the file system allows (else it is copied).
   * The store then shares the file's bytes: edit the original in place and the stored model changes with it.
   */
  link?: boolean;
  /**
   * Store a reference to the file instead of its bytes (`freehold import --link`): nothing is copied, the digest,
   * size and modification time are recorded, and a file that changes afterwards is refused until imported again.
   */
  reference?: boolean;
  /** Bytes hashed so far of all the model's files: import hashes every byte, which takes minutes for large models. */
  onProgress?: HashProgress;
  /** A vision projector (mmproj GGUF) to store with the model (copied; checked to be a CLIP vision projector). */
  projector?: string;
}

/** Progress of hashing a model's files, in bytes. */
export type HashProgress = (progress: { doneBytes: number; totalBytes: number }) => void;

/** Counts hashed bytes against the files' sizes and reports each step. */
async function progressOver(paths: readonly string[], report: HashProgress | undefined): Promise<OnBytes | undefined> {
  if (!report) return undefined;
  let totalBytes = 0;
  for (const path of paths) totalBytes += (await stat(path).catch(() => null))?.size ?? 0;
  let doneBytes = 0;
  report({ doneBytes, totalBytes });
  return (bytes) => {
    doneBytes += bytes;
    report({ doneBytes, totalBytes: Math.max(totalBytes, doneBytes) });
  };
}

/** Refuses a file that is not a vision projector llama.cpp can use (general.architecture clip, a vision encoder). */
function checkProjector(file: GgufFile, path: string): void {
  const architecture = file.metadata.get("general.architecture")?.value;
  const vision = file.metadata.get("clip.has_vision_encoder")?.value;
  if (architecture !== "clip" || vision !== true)
    throw new StoreError(
      `${path} is not a vision projector (an mmproj GGUF has general.architecture "clip" and a vision encoder; this one has ${JSON.stringify(architecture ?? null)})`,
      "invalid_projector",
    );
}

/** A complete, verified file (a finished download) to become a blob by rename. */
export interface DownloadedFile {
  path: string;
  digest: Digest;
  size: number;
  /** The name it had at its source (informational). */
  filename: string;
}

/** One file of a model, re-hashed. */
export interface VerifiedFile {
  filename: string;
  path: string;
  expected: Digest;
  /** The digest of the bytes now there; null when the file is missing. */
  actual: Digest | null;
}

export interface ImportedFile extends ManifestFile {
  /** The blob's path in the store. */
  path: string;
  /** True when the blob was a hard link to the imported file. */
  linked: boolean;
  /** True when the store already held these bytes (under any name) and kept its copy. */
  reused: boolean;
}

export interface ImportResult {
  name: string;
  files: ImportedFile[];
  summary: ModelSummary;
  /** True when the name already existed and now points at the imported model. */
  replaced: boolean;
  /** The vision projector stored with it. */
  projector?: ImportedFile;
  /** Why a pulled repository's projector was not stored (it is not a vision projector). */
  projectorSkipped?: string;
}

export interface ModelListEntry {
  name: string;
  /** The first file's digest (the model's id). */
  digest: Digest;
  size: number;
  /** Human parameter count, e.g. "292.9K". */
  parameters: string;
  quantization: string;
  modifiedAt: Date;
  synthetic: boolean;
}

export interface ModelDetails {
  name: string;
  manifest: Manifest;
  manifestPath: string;
  /** Blob paths in shard order. */
  blobPaths: string[];
  /** The vision projector's blob, when the model has one. */
  projectorPath?: string;
}

export interface SweepResult {
  /** Temporary files of processes that no longer exist. */
  temporaryFiles: string[];
  /** Blobs that no manifest referenced. */
  blobs: Digest[];
}

export interface RemoveResult {
  name: string;
  /** The model's blobs that were deleted because no other name used them. */
  removedBlobs: Digest[];
}

/**
 * The model store: content-addressed blobs plus one manifest per name, under one home directory.
 *
 * Writes are atomic (temporary file, fsync, rename, fsync of the directory), and every change to blobs/ and
 * manifests/ happens under an exclusive lock file, so concurrent processes and crashes leave either the old state or
 * the new. Blobs no manifest references (left by a crash) and abandoned temporary files are swept whenever the lock is
 * taken. Reads take no lock: manifests are only ever replaced whole.
 * @example
 * const store = new ModelStore({ home: config.home });
 * await store.import("stories260K.gguf", "stories");
 * const [path] = await store.resolve("stories"); // blobs/sha256-…
 */
export class ModelStore {
  readonly layout: StoreLayout;
  private readonly hooks: StoreHooks;
  private readonly lockOptions: LockOptions;

  constructor(options: ModelStoreOptions) {
    this.layout = new StoreLayout(options.home);
    this.hooks = options.hooks ?? {};
    this.lockOptions = options.lock ?? {};
  }

  get home(): string {
    return this.layout.home;
  }

  /**
   * Imports a GGUF file (every shard, for a split model) under `name`, replacing what the name pointed at before.
   * The file is validated before anything is copied, hashed while it is copied, and validated again as stored.
   */
  async import(file: string, name: string, options: ImportOptions = {}): Promise<ImportResult> {
    const modelName = parseModelName(name);
    const source = resolve(file);
    const paths = await findShards(source);
    checkShardMetadata(
      paths.map((path) => readGgufFile(path)),
      paths,
    );
    const projectorSource = options.projector ? resolve(options.projector) : undefined;
    if (projectorSource) checkProjector(readGgufFile(projectorSource), projectorSource);
    if (projectorSource && options.reference)
      throw new StoreError(
        "--projector cannot be combined with --link yet; import the model as a copy",
        "invalid_projector",
      );
    await this.prepare();
    const onBytes = await progressOver(paths, options.onProgress);
    if (options.reference) return this.importReference(paths, modelName, source, onBytes);
    const temporaries: string[] = [];
    try {
      const ingested: IngestedFile[] = [];
      for (const path of paths) {
        const temporary = temporaryPath(this.layout, "blob");
        temporaries.push(temporary);
        ingested.push(
          await ingestFile(path, temporary, { link: options.link ?? false, ...(onBytes ? { onBytes } : {}) }),
        );
      }
      let projectorFile: IngestedFile | undefined;
      if (projectorSource) {
        const temporary = temporaryPath(this.layout, "blob");
        temporaries.push(temporary);
        projectorFile = await ingestFile(projectorSource, temporary, { link: options.link ?? false });
        checkProjector(revalidate(projectorFile, projectorSource), projectorSource);
      }
      const summary = summarizeModel(ingested.map((file, i) => revalidate(file, paths[i]!)));
      await this.hooks.afterTempWritten?.();
      const { value } = await this.withLock(async () => {
        const files: ImportedFile[] = [];
        for (const [i, file] of ingested.entries()) {
          files.push({ ...(await this.placeBlob(file)), filename: basename(paths[i]!), linked: file.linked });
        }
        const projector =
          projectorFile && projectorSource
            ? {
                ...(await this.placeBlob(projectorFile)),
                filename: basename(projectorSource),
                linked: projectorFile.linked,
              }
            : undefined;
        await fsyncDirectory(this.layout.blobs);
        await this.hooks.afterBlobWritten?.();
        const replaced = (await stat(this.layout.manifestPath(modelName)).catch(() => null)) !== null;
        await this.writeManifest(modelName, {
          schemaVersion: 1,
          name: modelName.display,
          files: files.map(({ digest, size, filename }) => ({ digest, size, filename })),
          source: { kind: "import", path: source },
          summary,
          addedAt: new Date().toISOString(),
          ...(projector
            ? { projector: { digest: projector.digest, size: projector.size, filename: projector.filename } }
            : {}),
        });
        return { name: modelName.display, files, summary, replaced, ...(projector ? { projector } : {}) };
      });
      return value;
    } finally {
      // After a successful rename these are gone already; after a failure they must not linger.
      await Promise.all(temporaries.map((path) => rm(path, { force: true })));
    }
  }

  /** Every model, most recently added first. Manifests that cannot be read are left out (and keep their blobs). */
  async list(): Promise<ModelListEntry[]> {
    const entries: ModelListEntry[] = [];
    for (const path of await this.manifestPaths()) {
      const manifest = await this.readOwnManifest(path).catch(() => null);
      if (!manifest) continue;
      entries.push({
        name: manifest.name,
        digest: manifest.files[0]!.digest,
        size: manifest.files.reduce((total, file) => total + file.size, 0),
        parameters: manifest.summary.parameterSize,
        quantization: manifest.summary.fileType,
        modifiedAt: new Date(manifest.addedAt),
        synthetic: manifest.summary.synthetic,
      });
    }
    return entries.sort((a, b) => b.modifiedAt.getTime() - a.modifiedAt.getTime() || a.name.localeCompare(b.name));
  }

  /** A model's manifest and blob paths. Throws NotFoundError when the name is not in the store. */
  async show(name: string): Promise<ModelDetails> {
    const modelName = parseModelName(name);
    const manifestPath = this.layout.manifestPath(modelName);
    const manifest = await this.readOwnManifest(manifestPath);
    if (!manifest) throw this.notFound(modelName);
    return {
      name: manifest.name,
      manifest,
      manifestPath,
      blobPaths: manifest.files.map((file) => file.link?.path ?? this.layout.blobPath(file.digest)),
      ...(manifest.projector ? { projectorPath: this.layout.blobPath(manifest.projector.digest) } : {}),
    };
  }

  /**
   * The model's files in shard order, ready to load; a missing blob is an error that says to import again, and a
   * file imported by reference that changed since (size or modification time) is refused.
   */
  async resolve(name: string): Promise<string[]> {
    const { name: display, manifest, blobPaths } = await this.show(name);
    for (const [i, path] of blobPaths.entries()) {
      await checkFile(display, path, manifest.files[i]!);
    }
    return blobPaths;
  }

  /**
   * Adds finished downloads as a model: validates them as GGUF, renames them into blobs/ (or keeps the blob already
   * there) and writes the manifest, under the lock. The digests must already be verified by whoever downloaded.
   */
  async addDownloaded(
    name: string,
    files: DownloadedFile[],
    source: ManifestSource,
    profile?: ModelProfile,
    projector?: DownloadedFile,
  ): Promise<ImportResult> {
    const modelName = parseModelName(name);
    const paths = files.map((file) => file.path);
    const ggufs = paths.map((path) => readGgufFile(path));
    checkShardMetadata(ggufs, paths);
    // A repository's projector that is not a vision one (an audio-only mmproj) is left out, not the model with it.
    let projectorSkipped: string | undefined;
    if (projector) {
      try {
        checkProjector(readGgufFile(projector.path), projector.filename);
      } catch (error) {
        projectorSkipped = (error as Error).message;
        if (projector.path !== this.layout.blobPath(projector.digest)) await rm(projector.path, { force: true });
        projector = undefined;
      }
    }
    const summary = summarizeModel(ggufs);
    const { value } = await this.withLock(async () => {
      const placed: ImportedFile[] = [];
      for (const file of projector ? [...files, projector] : files) {
        const blobPath = this.layout.blobPath(file.digest);
        if (file.path === blobPath) {
          // Already a blob: it must still be there now that the lock is held (a removal may have swept it).
          if (!(await this.hasBlob(file.digest, file.size))) {
            throw new StoreError(
              `${file.digest} left the store while it was being added; try again`,
              "blob_removed",
              409,
            );
          }
          placed.push({
            digest: file.digest,
            size: file.size,
            path: blobPath,
            reused: true,
            filename: file.filename,
            linked: false,
          });
          continue;
        }
        const blob = await this.placeBlob({
          temporaryPath: file.path,
          digest: file.digest,
          size: file.size,
          linked: false,
        });
        placed.push({ ...blob, filename: file.filename, linked: false });
      }
      await fsyncDirectory(this.layout.blobs);
      const placedProjector = projector ? placed.pop() : undefined;
      const replaced = (await stat(this.layout.manifestPath(modelName)).catch(() => null)) !== null;
      await this.writeManifest(modelName, {
        schemaVersion: 1,
        name: modelName.display,
        files: placed.map(({ digest, size, filename }) => ({ digest, size, filename })),
        source,
        summary,
        addedAt: new Date().toISOString(),
        ...(profile ? { profile } : {}),
        ...(placedProjector
          ? {
              projector: {
                digest: placedProjector.digest,
                size: placedProjector.size,
                filename: placedProjector.filename,
              },
            }
          : {}),
      });
      return {
        name: modelName.display,
        files: placed,
        summary,
        replaced,
        ...(placedProjector ? { projector: placedProjector } : {}),
        ...(projectorSkipped ? { projectorSkipped } : {}),
      };
    });
    return value;
  }

  /**
   * Creates `name` as `base` plus a profile (system prompt, defaults, template, examples): a new manifest over the
   * same blobs, no copy. A base that has a profile of its own passes it on; the new profile's values win.
   */
  async create(name: string, base: string, profile: ModelProfile): Promise<ModelDetails> {
    const to = parseModelName(name);
    const from = parseModelName(base);
    await this.withLock(async () => {
      const manifest = await this.readOwnManifest(this.layout.manifestPath(from));
      if (!manifest) throw this.notFound(from);
      const inherited = manifest.profile ?? {};
      const merged: ModelProfile = { ...inherited, ...profile };
      if (inherited.sampling || profile.sampling) merged.sampling = { ...inherited.sampling, ...profile.sampling };
      if (inherited.limits || profile.limits) merged.limits = { ...inherited.limits, ...profile.limits };
      await this.writeManifest(to, {
        schemaVersion: 1,
        name: to.display,
        files: manifest.files,
        source: { kind: "profile", base: manifest.name },
        ...(manifest.projector ? { projector: manifest.projector } : {}),
        summary: manifest.summary,
        addedAt: new Date().toISOString(),
        profile: merged,
      });
    });
    return this.show(to.display);
  }

  /** Where a download of `digest` collects its bytes until verified (kept across runs, so it can resume). */
  async downloadPath(digest: string): Promise<string> {
    await makeDirectory(this.layout.inside("downloads"));
    return this.layout.inside("downloads", `${blobFileName(digest)}.partial`);
  }

  /** The lock file that makes processes share one download of `digest`. */
  downloadLockPath(digest: string): string {
    return this.layout.inside("downloads", `${blobFileName(digest)}.lock`);
  }

  /** True when the store holds a complete blob with these bytes. */
  async hasBlob(digest: Digest, size: number): Promise<boolean> {
    const info = await stat(this.layout.blobPath(digest)).catch(() => null);
    return info?.isFile() === true && info.size === size;
  }

  /** Re-hashes every file of a model (blob or referenced file) against its manifest. */
  async verify(name: string, options: { onProgress?: HashProgress } = {}): Promise<VerifiedFile[]> {
    const { manifest, blobPaths } = await this.show(name);
    const results: VerifiedFile[] = [];
    const onBytes = await progressOver(blobPaths, options.onProgress);
    for (const [i, file] of manifest.files.entries()) {
      const path = blobPaths[i]!;
      const actual = await hashFile(path, onBytes).then(
        (hashed) => hashed.digest,
        () => null,
      );
      results.push({ filename: file.filename, path, expected: file.digest, actual });
    }
    return results;
  }

  /**
   * Removes a name; its blobs go too unless another name still uses them. A name whose manifest is corrupt can be
   * removed as well (that is how a person recovers from one).
   */
  async remove(name: string): Promise<RemoveResult> {
    const modelName = parseModelName(name);
    const { value: manifest, swept } = await this.withLock(async () => {
      const path = this.layout.manifestPath(modelName);
      const found = await this.readOwnManifest(path).catch((error: unknown) => {
        if (error instanceof StoreError && error.code === "corrupt_manifest") return undefined;
        throw error;
      });
      if (found === null) throw this.notFound(modelName);
      await rm(path);
      await fsyncDirectory(dirname(path));
      await this.removeEmptyDirectories(dirname(path));
      return found;
    });
    if (manifest === undefined) return { name: modelName.display, removedBlobs: swept.blobs };
    const digests = new Set(
      [...manifest.files, ...(manifest.projector ? [manifest.projector] : [])].map((file) => file.digest),
    );
    return { name: manifest.name, removedBlobs: swept.blobs.filter((digest) => digests.has(digest)) };
  }

  /** Gives a model a second name that shares its blobs (replacing what `destination` pointed at). */
  async copy(source: string, destination: string): Promise<ModelDetails> {
    const from = parseModelName(source);
    const to = parseModelName(destination);
    await this.withLock(async () => {
      const manifest = await this.readOwnManifest(this.layout.manifestPath(from));
      if (!manifest) throw this.notFound(from);
      await this.writeManifest(to, { ...manifest, name: to.display, addedAt: new Date().toISOString() });
    });
    return this.show(to.display);
  }

  /** Deletes abandoned temporary files and unreferenced blobs now (this also happens whenever the lock is taken). */
  async prune(): Promise<SweepResult> {
    return (await this.withLock(async () => undefined)).swept;
  }

  /** Import by reference: hash each file where it is and record where, how big and how recent it was. */
  private async importReference(
    paths: string[],
    modelName: ModelName,
    source: string,
    onBytes: OnBytes | undefined,
  ): Promise<ImportResult> {
    const files: ImportedFile[] = [];
    const manifestFiles: ManifestFile[] = [];
    for (const path of paths) {
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
      files.push({ digest, size, filename: basename(path), path: real, linked: true, reused: false });
      manifestFiles.push({
        digest,
        size,
        filename: basename(path),
        link: { path: real, size, mtimeMs: after.mtimeMs },
      });
    }
    const summary = summarizeModel(files.map((file) => readGgufFile(file.path)));
    const { value } = await this.withLock(async () => {
      const replaced = (await stat(this.layout.manifestPath(modelName)).catch(() => null)) !== null;
      await this.writeManifest(modelName, {
        schemaVersion: 1,
        name: modelName.display,
        files: manifestFiles,
        source: { kind: "import", path: source },
        summary,
        addedAt: new Date().toISOString(),
      });
      return { name: modelName.display, files, summary, replaced };
    });
    return value;
  }

  private notFound(name: ModelName): NotFoundError {
    return new NotFoundError(`model "${name.display}" is not in the store at ${this.home}`, "model_not_found");
  }

  private async prepare(): Promise<void> {
    for (const directory of [this.layout.blobs, this.layout.manifests, this.layout.tmp]) {
      await makeDirectory(directory);
    }
  }

  /** Runs `action` holding the store lock, then sweeps what crashes and replacements left behind. */
  private async withLock<T>(action: () => Promise<T>): Promise<{ value: T; swept: SweepResult }> {
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
  private async sweep(): Promise<SweepResult> {
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
  private async placeBlob(file: IngestedFile): Promise<Omit<ImportedFile, "filename" | "linked">> {
    const path = this.layout.blobPath(file.digest);
    const existing = await stat(path).catch(() => null);
    // Blobs only ever appear by rename, so one of the right size is complete.
    const reused = existing?.isFile() === true && existing.size === file.size;
    if (reused) await rm(file.temporaryPath, { force: true });
    else await rename(file.temporaryPath, path);
    return { digest: file.digest, size: file.size, path, reused };
  }

  private async writeManifest(name: ModelName, manifest: Manifest): Promise<void> {
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

  /** Reads a manifest and checks that its name maps back to where it lies (so a moved or edited file is refused). */
  private async readOwnManifest(path: string): Promise<Manifest | null> {
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
  private async manifestPaths(): Promise<string[]> {
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
  private async removeEmptyDirectories(directory: string): Promise<void> {
    for (let current = directory; current.startsWith(this.layout.manifests + sep); current = dirname(current)) {
      try {
        await rmdir(current);
      } catch {
        return;
      }
    }
  }
}

/** A model file must exist; one imported by reference must also be as it was when hashed. */
async function checkFile(model: string, path: string, file: ManifestFile): Promise<void> {
  const info = await stat(path).catch(() => null);
  if (!info?.isFile()) {
    const how = file.link ? "the file it was imported from by reference is gone" : "import it again";
    throw new StoreError(`model "${model}" is missing its file ${path}; ${how}`, "missing_blob", 500);
  }
  if (file.link && (info.size !== file.link.size || info.mtimeMs !== file.link.mtimeMs)) {
    throw new StoreError(
      `model "${model}" refers to ${path}, which changed after it was imported by reference (it may no longer be the model that was hashed); check it with \`freehold verify\`, then import it again with \`freehold import --link\``,
      "linked_file_changed",
      409,
    );
  }
}

/** Validates the stored copy too: the source may have changed between the first check and the copy. */
function revalidate(file: IngestedFile, source: string): GgufFile {
  try {
    return readGgufFile(file.temporaryPath);
  } catch (error) {
    if (!(error instanceof ModelFileError)) throw error;
    throw new ModelFileError(`${source} changed while it was imported (${error.message}); import it again`, error);
  }
}
