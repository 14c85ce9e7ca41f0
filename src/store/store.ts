import { rm, stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import { StoreError } from "../core/errors.js";
import type { ModelProfile } from "../core/profile.js";
import { readGgufFile, summarizeModel } from "../gguf/index.js";
import { blobFileName, type Digest } from "./digest.js";
import { fsyncDirectory, makeDirectory } from "./durable.js";
import { hashFile, type IngestedFile, ingestFile, type OnBytes } from "./ingest.js";
import { StoreLayout } from "./layout.js";
import type { ManifestSource } from "./manifest.js";
import { type ModelName, parseModelName } from "./names.js";
import { checkShardMetadata, findShards } from "./shards.js";
import {
  checkFile,
  checkProjector,
  manifestEntry,
  progressOver,
  revalidate,
  visionProjectorProblem,
} from "./storeChecks.js";
import { StoreDisk } from "./storeDisk.js";
import { referenceFile } from "./storeReference.js";
import type {
  DownloadedFile,
  HashProgress,
  ImportedFile,
  ImportOptions,
  ImportResult,
  ModelDetails,
  ModelListEntry,
  ModelStoreOptions,
  RemoveResult,
  StoreHooks,
  SweepResult,
  VerifiedFile,
} from "./storeTypes.js";
import { temporaryPath } from "./temporary.js";

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
  private readonly disk: StoreDisk;

  constructor(options: ModelStoreOptions) {
    this.layout = new StoreLayout(options.home);
    this.disk = new StoreDisk(this.layout, options.hooks ?? {}, options.lock ?? {});
    this.hooks = options.hooks ?? {};
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
    await this.disk.prepare();
    const onBytes = await progressOver(paths, options.onProgress);
    if (options.reference) return this.importReference(paths, modelName, source, onBytes, projectorSource);
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
      const { value } = await this.disk.withLock(async () => {
        const files: ImportedFile[] = [];
        for (const [i, file] of ingested.entries()) {
          files.push({ ...(await this.disk.placeBlob(file)), filename: basename(paths[i]!), linked: file.linked });
        }
        const projector =
          projectorFile && projectorSource
            ? {
                ...(await this.disk.placeBlob(projectorFile)),
                filename: basename(projectorSource),
                linked: projectorFile.linked,
              }
            : undefined;
        await fsyncDirectory(this.layout.blobs);
        await this.hooks.afterBlobWritten?.();
        const replaced = await this.disk.replaceManifest(modelName, {
          schemaVersion: 1,
          name: modelName.display,
          files: files.map(({ digest, size, filename }) => ({ digest, size, filename })),
          source: { kind: "import", path: source },
          summary,
          addedAt: new Date().toISOString(),
          ...(projector ? { projector: manifestEntry(projector) } : {}),
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
    for (const path of await this.disk.manifestPaths()) {
      const manifest = await this.disk.readOwnManifest(path).catch(() => null);
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
    const manifest = await this.disk.readOwnManifest(manifestPath);
    if (!manifest) throw this.disk.notFound(modelName);
    return {
      name: manifest.name,
      manifest,
      manifestPath,
      blobPaths: manifest.files.map((file) => file.link?.path ?? this.layout.blobPath(file.digest)),
      ...(manifest.projector
        ? { projectorPath: manifest.projector.link?.path ?? this.layout.blobPath(manifest.projector.digest) }
        : {}),
    };
  }

  /**
   * The model's files in shard order, ready to load; a missing blob is an error that says to import again, and a
   * file imported by reference that changed since (size or modification time) is refused.
   */
  async resolve(name: string): Promise<string[]> {
    const { name: display, manifest, blobPaths, projectorPath } = await this.show(name);
    for (const [i, path] of blobPaths.entries()) {
      await checkFile(display, path, manifest.files[i]!);
    }
    if (manifest.projector && projectorPath) await checkFile(display, projectorPath, manifest.projector);
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
    const projectorSkipped = projector ? visionProjectorProblem(projector) : undefined;
    if (projector && projectorSkipped !== undefined) {
      if (projector.path !== this.layout.blobPath(projector.digest)) await rm(projector.path, { force: true });
      projector = undefined;
    }
    const summary = summarizeModel(ggufs);
    const { value } = await this.disk.withLock(async () => {
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
          placed.push({ ...manifestEntry(file), path: blobPath, reused: true, linked: false });
          continue;
        }
        const blob = await this.disk.placeBlob({
          temporaryPath: file.path,
          digest: file.digest,
          size: file.size,
          linked: false,
        });
        placed.push({ ...blob, filename: file.filename, linked: false });
      }
      await fsyncDirectory(this.layout.blobs);
      const placedProjector = projector ? placed.pop() : undefined;
      const replaced = await this.disk.replaceManifest(modelName, {
        schemaVersion: 1,
        name: modelName.display,
        files: placed.map(manifestEntry),
        source,
        summary,
        addedAt: new Date().toISOString(),
        ...(profile ? { profile } : {}),
        ...(placedProjector ? { projector: manifestEntry(placedProjector) } : {}),
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
    await this.disk.withLock(async () => {
      const manifest = await this.disk.readOwnManifest(this.layout.manifestPath(from));
      if (!manifest) throw this.disk.notFound(from);
      const inherited = manifest.profile ?? {};
      const merged: ModelProfile = { ...inherited, ...profile };
      if (inherited.sampling || profile.sampling) merged.sampling = { ...inherited.sampling, ...profile.sampling };
      if (inherited.limits || profile.limits) merged.limits = { ...inherited.limits, ...profile.limits };
      await this.disk.writeManifest(to, {
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

  /** Re-hashes every file of a model (blob or referenced file, its projector too) against its manifest. */
  async verify(name: string, options: { onProgress?: HashProgress } = {}): Promise<VerifiedFile[]> {
    const { manifest, blobPaths, projectorPath } = await this.show(name);
    const files = [...manifest.files, ...(manifest.projector ? [manifest.projector] : [])];
    const paths = [...blobPaths, ...(projectorPath ? [projectorPath] : [])];
    const results: VerifiedFile[] = [];
    const onBytes = await progressOver(paths, options.onProgress);
    for (const [i, file] of files.entries()) {
      const path = paths[i]!;
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
    const { value: manifest, swept } = await this.disk.withLock(async () => {
      const path = this.layout.manifestPath(modelName);
      const found = await this.disk.readOwnManifest(path).catch((error: unknown) => {
        if (error instanceof StoreError && error.code === "corrupt_manifest") return undefined;
        throw error;
      });
      if (found === null) throw this.disk.notFound(modelName);
      await rm(path);
      await fsyncDirectory(dirname(path));
      await this.disk.removeEmptyDirectories(dirname(path));
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
    await this.disk.withLock(async () => {
      const manifest = await this.disk.readOwnManifest(this.layout.manifestPath(from));
      if (!manifest) throw this.disk.notFound(from);
      await this.disk.writeManifest(to, { ...manifest, name: to.display, addedAt: new Date().toISOString() });
    });
    return this.show(to.display);
  }

  /** Deletes abandoned temporary files and unreferenced blobs now (this also happens whenever the lock is taken). */
  async prune(): Promise<SweepResult> {
    return (await this.disk.withLock(async () => undefined)).swept;
  }

  /** Import by reference: each file (shards, and the projector) hashed where it is (storeReference.ts). */
  private async importReference(
    paths: string[],
    modelName: ModelName,
    source: string,
    onBytes: OnBytes | undefined,
    projectorSource: string | undefined,
  ): Promise<ImportResult> {
    const references: Awaited<ReturnType<typeof referenceFile>>[] = [];
    for (const path of paths) references.push(await referenceFile(path, onBytes));
    const files = references.map((reference) => reference.file);
    const projector = projectorSource ? await referenceFile(projectorSource) : undefined;
    // Checked again as hashed: the file may have been replaced since the first check.
    if (projector && projectorSource) checkProjector(readGgufFile(projector.file.path), projectorSource);
    const summary = summarizeModel(files.map((file) => readGgufFile(file.path)));
    const { value } = await this.disk.withLock(async () => {
      const replaced = await this.disk.replaceManifest(modelName, {
        schemaVersion: 1,
        name: modelName.display,
        files: references.map((reference) => reference.entry),
        source: { kind: "import", path: source },
        summary,
        addedAt: new Date().toISOString(),
        ...(projector ? { projector: projector.entry } : {}),
      });
      return { name: modelName.display, files, summary, replaced, ...(projector ? { projector: projector.file } : {}) };
    });
    return value;
  }
}
