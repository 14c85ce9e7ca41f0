export { HubClient, type HubClientOptions, type HubSelection } from "./client.js";
export { type DownloadProgress, type DownloadTarget, downloadFile } from "./download.js";
export { HubError } from "./errors.js";
export { chooseProjector, isProjectorPath, type ProjectorChoice } from "./projector.js";
export {
  chooseDefault,
  groupModels,
  type HubModelFiles,
  quantizationOf,
  quantizationPreference,
} from "./quantization.js";
export { type HubReference, isHubReference, isSafeRepoPath, parseHubReference } from "./reference.js";
export { type HubFile, MAX_FILE_BYTES, parseTreePage } from "./tree.js";
