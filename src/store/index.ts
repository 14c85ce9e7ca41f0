export { blobFileName, type Digest, digestHex, isDigest, parseDigest } from "./digest.js";
export { readTextIfExists } from "./durable.js";
export { hashFile } from "./ingest.js";
export { StoreLayout } from "./layout.js";
export { acquireLock, type HeldLock, type LockOptions, type LockOwner } from "./lock.js";
export {
  type Manifest,
  type ManifestFile,
  type ManifestSource,
  manifestSchema,
  parseManifest,
  profileSchema,
} from "./manifest.js";
export { DEFAULT_TAG, type ModelName, nameLimits, parseModelName, sameModelName } from "./names.js";
export { ModelStore } from "./store.js";
export type * from "./storeTypes.js";
