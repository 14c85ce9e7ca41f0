// stories260K loaded in this process as the runner loads a model (src/engine/runner/runnerModel.ts), for tests that
// count decodes or watch the token loop without a runner process: one thread, f16 cache, no event batching.
import type { LoadOptions } from "../../src/engine/runner/protocol.js";
import { loadRunnerModel, type RunnerModel } from "../../src/engine/runner/runnerModel.js";
import { storiesModelPath } from "./paths.js";

export function loadStoriesRunner(options: Pick<LoadOptions, "contextSize" | "sequences">): Promise<RunnerModel> {
  return loadRunnerModel({
    paths: [storiesModelPath],
    threads: 1,
    kvCacheType: "f16",
    flashAttention: "auto",
    batchSize: 512,
    gpuLayers: 0,
    flushIntervalMs: 0,
    ...options,
  });
}
