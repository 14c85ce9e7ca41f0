export {
  type FoundModel,
  findAdoptableModels,
  type ModelLocation,
  modelLocations,
  type SearchPlaces,
} from "./adopt.js";
export { installLocked, type LockedInstall } from "./installLocked.js";
export {
  LOCKFILE_NAME,
  type LockEntry,
  type Lockfile,
  lockEntry,
  lockModels,
  parseLockfile,
  readLockfile,
  serializeLockfile,
  type VerifyProblem,
  type VerifyReport,
  verifyStore,
} from "./lockfile.js";
export {
  checkProfileMcp,
  checkTemplate,
  formatProfile,
  type ProfileDefinition,
  parseModelfile,
  parseProfile,
  parseYamlProfile,
  profileParameters,
} from "./profileFile.js";
export {
  defaultName,
  ModelPuller,
  type PinnedFiles,
  type PullOptions,
  type PullProgress,
  type PullResult,
} from "./pull.js";
