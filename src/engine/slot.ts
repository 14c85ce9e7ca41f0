import type { GenerateRequest, LoadSettings } from "../core/chat.js";
import { FreeholdError } from "../core/errors.js";
import { type MemorySettings, memorySettingsProblem } from "../core/memorySettings.js";
import type { ModelSummary } from "../gguf/types.js";
import type { AdmissionQueue } from "./admission.js";
import { HOW_TO_GET_LLAMA_SERVER } from "./engines.js";
import type { KeepAlive } from "./keepAlive.js";
import { estimateModelMemory, kvCacheTypeProblem, type MemoryEstimate } from "./memory.js";
import type { RunnerProcess } from "./runnerProcess.js";
import type { EngineOptions, LoadedModelStatus, ResolvedModel } from "./types.js";

/** One model's place in the engine: its runner, settings, queue and keep-alive (engine.ts ties them together). */

/**
 * What a model is loaded with; a request can ask for other values (Ollama's options), which reloads it. The KV cache
 * type and flash attention come from the server's settings or the model's profile, never from a request.
 */
export interface Settings extends MemorySettings {
  contextSize: number;
  /** 0 = chosen per model. */
  threads: number;
  gpuLayers: "auto" | "max" | number;
}

export interface Slot {
  name: string;
  digest: string;
  /** The draft model its profile names (speculative decoding), resolved when the slot was made. */
  draft?: ResolvedModel;
  /** The model's projector, if it has one. */
  projector?: string;
  settings: Settings;
  /** Set while the model waits to go idle to be reloaded with other settings; requests wait for it. */
  reloading?: Promise<void>;
  /** Called when the last running or queued request ends. */
  onIdle?: () => void;
  estimate: MemoryEstimate;
  lastUsed: number;
  summary: ModelSummary;
  runner?: RunnerProcess;
  loading?: Promise<RunnerProcess>;
  crashed: boolean;
  restarts: number;
  /** Requests admitted to the runner (at most one per sequence) and those waiting for one. */
  admission: AdmissionQueue;
  /** The last request's keep-alive wins, as in Ollama. */
  keepAlive: KeepAlive;
}

/** True when a request asks for a setting the loaded model does not have (left-out values accept any). */
export function differs(loaded: Settings, wanted: LoadSettings | undefined): boolean {
  if (!wanted) return false;
  return (
    (wanted.contextSize !== undefined && wanted.contextSize !== loaded.contextSize) ||
    (wanted.threads !== undefined && wanted.threads !== loaded.threads) ||
    (wanted.gpuLayers !== undefined && wanted.gpuLayers !== loaded.gpuLayers)
  );
}

/** The settings a model loads with: the request's, else what it has, else the server's; the profile's memory ones. */
export function settingsFor(
  options: Pick<EngineOptions, "contextSize" | "threads" | "gpuLayers" | "kvCacheType" | "flashAttention" | "onEvent">,
  loaded: Settings | undefined,
  wanted: LoadSettings | undefined,
  model: ResolvedModel,
): Settings {
  const settings: Settings = {
    contextSize: wanted?.contextSize ?? loaded?.contextSize ?? options.contextSize,
    threads: wanted?.threads ?? loaded?.threads ?? options.threads,
    gpuLayers: wanted?.gpuLayers ?? loaded?.gpuLayers ?? options.gpuLayers ?? "auto",
    kvCacheType: model.profile?.kvCacheType ?? options.kvCacheType ?? "f16",
    flashAttention: model.profile?.flashAttention ?? options.flashAttention ?? "auto",
  };
  // As Ollama does, a model that cannot have a quantized cache gets f16 (ps shows it; the log says why).
  const narrow = kvCacheTypeProblem(model.summary, settings.kvCacheType);
  if (narrow) {
    options.onEvent?.({
      type: "model-settings-adjusted",
      model: model.name,
      detail: `KV cache f16 instead of ${settings.kvCacheType}: ${narrow}`,
    });
    settings.kvCacheType = "f16";
  }
  // A profile's type over the server's flash attention (or the reverse) can make a pair llama.cpp refuses.
  const problem = memorySettingsProblem(settings);
  if (problem)
    throw new FreeholdError(
      `${model.name} cannot load with KV cache ${settings.kvCacheType} and flash attention ${settings.flashAttention}: ${problem} (its profile's kv_cache_type/flash_attention, or FREEHOLD_KV_CACHE_TYPE/FREEHOLD_FLASH_ATTENTION)`,
      { code: "invalid_model_settings", status: 500, type: "server_error" },
    );
  return settings;
}

/** The memory a model takes with these settings, its draft model included. */
export function estimateSlot(
  sequences: number,
  model: ResolvedModel,
  settings: Settings,
  draft?: ResolvedModel,
): MemoryEstimate {
  // The runner keeps one slot more than it admits (see SequencePool).
  const options = { batchSize: 512, kvCacheType: settings.kvCacheType, flashAttention: settings.flashAttention };
  const own = estimateModelMemory(model.summary, settings.contextSize, sequences + 1, options);
  if (!draft) return own;
  // A draft model loads beside it with a context of the same shape (f16: the draft's own cache is not quantized).
  const extra = estimateModelMemory(draft.summary, settings.contextSize, sequences + 1, {
    batchSize: 512,
  });
  return {
    weights: own.weights + extra.weights,
    kvCache: own.kvCache + extra.kvCache,
    overhead: own.overhead + extra.overhead,
    total: own.total + extra.total,
    contextSize: own.contextSize,
  };
}

/** What `ps` and /api/ps show for one model. */
export function slotStatus(slot: Slot, sequences: number): LoadedModelStatus {
  return {
    name: slot.name,
    digest: slot.digest,
    state: slot.loading ? "loading" : slot.crashed ? "crashed" : "ready",
    ...(slot.runner?.pid !== undefined ? { pid: slot.runner.pid } : {}),
    ...(slot.runner?.info
      ? {
          gpuLayers: slot.runner.info.gpuLayers,
          threads: slot.runner.info.threads,
          busyThreads: slot.runner.info.busyThreads,
          contextSize: slot.runner.info.contextSize,
          backend: slot.runner.info.backend,
          engine: slot.runner.info.engine,
          vision: slot.runner.info.vision,
          vram: slot.runner.info.vramBytes,
        }
      : {}),
    activeRequests: slot.admission.active,
    queuedRequests: slot.admission.queued,
    slots: sequences,
    size: slot.summary.size,
    memory: slot.estimate.total,
    kvCacheType: slot.settings.kvCacheType,
    flashAttention: slot.runner?.info?.flashAttention ?? slot.settings.flashAttention,
    expiresAt: slot.keepAlive.expiresAt === null ? null : new Date(slot.keepAlive.expiresAt).toISOString(),
    restarts: slot.restarts,
  };
}

/** An image for a model that cannot read it is a 400 that says what would make it readable. */
export function checkImages(request: GenerateRequest, runner: RunnerProcess, slot: Slot): void {
  if (request.kind !== "chat" || !request.messages.some((message) => (message.images?.length ?? 0) > 0)) return;
  if (runner.info?.vision) return;
  const why = !slot.projector
    ? `${slot.name} cannot read images: it has no vision projector (import one with \`freehold import MODEL.gguf --projector MMPROJ.gguf\`)`
    : runner.info?.engine === "llama-server"
      ? `${slot.name} has a projector, but llama-server did not load it as a vision model`
      : `${slot.name} has a vision projector, but it runs on the node-llama-cpp engine, which cannot read images; for the llama-server engine, ${HOW_TO_GET_LLAMA_SERVER}`;
  throw new FreeholdError(why, {
    code: "images_unsupported",
    status: 400,
    type: "invalid_request_error",
    param: "messages",
  });
}
