import type { ModelSummary } from "../gguf/index.js";
import type { Digest } from "./digest.js";
import type { LockOptions } from "./lock.js";
import type { Manifest, ManifestFile } from "./manifest.js";

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
