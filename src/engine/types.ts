import type { FlashAttentionMode, KvCacheType } from "../core/memorySettings.js";
import type { ModelProfile } from "../core/profile.js";
import type { ModelSummary } from "../gguf/types.js";
import type { EngineSetting, LlamaServerLocation } from "./engines.js";
import type { RunnerDiagnostic, RunnerProcess, RunnerStartOptions } from "./runnerProcess.js";

/** What the engine needs from the model store: a name → files and facts. Injected, so tests can fake it. */
export interface ModelResolver {
  resolve(name: string): Promise<ResolvedModel>;
  list(): Promise<ResolvedModel[]>;
}

export interface ResolvedModel {
  name: string;
  /** The first file's digest: the model's identity. */
  digest: string;
  paths: string[];
  summary: ModelSummary;
  addedAt: string;
  /**
   * A profile (`freehold create`): the gateway applies its defaults and prompts to every request for this name; the
   * engine uses only its load settings (template, KV cache, flash attention, draft, engine).
   */
  profile?: ModelProfile;
  /** A multimodal projector (mmproj GGUF) stored with the model: it can read images on the llama-server engine. */
  projector?: string;
}

export interface EngineOptions {
  resolver: ModelResolver;
  /** CPU threads per runner; 0 picks per model (see threads.ts). */
  threads: number;
  /** Context size per loaded model, capped by what the model was trained on. */
  contextSize: number;
  /** Parallel sequences per model. */
  sequences: number;
  /** How long an idle model stays loaded, ms; negative keeps it forever. */
  keepAliveMs: number;
  flushIntervalMs?: number;
  /** Requests that may wait per model when every slot is busy; past it, 503 at once. */
  maxQueue: number;
  /** How long a request may wait for a slot before a 503, ms. */
  queueTimeoutMs: number;
  /** Layers to offload to a GPU when one is present. */
  gpuLayers?: "auto" | "max" | number;
  /** The KV cache's element type (FREEHOLD_KV_CACHE_TYPE; a profile's own wins). Default f16. */
  kvCacheType?: KvCacheType;
  /** Flash attention (FREEHOLD_FLASH_ATTENTION; a profile's own wins). Default auto. */
  flashAttention?: FlashAttentionMode;
  /** Bytes all loaded models may take together; 0 = 90% of the machine's memory. */
  memoryBudget: number;
  /** Free system memory now (injectable for tests). */
  freeMemory?: () => number;
  /** Builds the child's environment (config owns it: nothing else reads the environment). */
  environment: (extra: Record<string, string>) => NodeJS.ProcessEnv;
  /** Starts a runner; injectable so the scheduler logic is testable without a model. */
  startRunner?: (options: RunnerStartOptions) => Promise<RunnerProcess>;
  /** Which engine hosts models (FREEHOLD_ENGINE; a profile's `engine` overrides it per model). Default auto. */
  engine?: EngineSetting;
  /** The llama-server binary, or why there is none. */
  llamaServer?: LlamaServerLocation;
  onEvent?: (event: EngineEvent) => void;
}

export type EngineEvent =
  | { type: "model-loading"; model: string }
  | { type: "model-loaded"; model: string; loadMs: number; threads: number }
  | { type: "model-load-failed"; model: string; error: string }
  | { type: "model-unloaded"; model: string }
  | { type: "runner-crashed"; model: string; detail: string }
  /** A setting the model cannot have was replaced (a quantized KV cache on narrow heads → f16). */
  | { type: "model-settings-adjusted"; model: string; detail: string }
  /** What a runner's clients were not told (its stderr, llama.cpp's reasons, unexpected exceptions): for the log. */
  | ({ type: "runner-diagnostic"; model: string } & RunnerDiagnostic);

export interface LoadedModelStatus {
  name: string;
  digest: string;
  state: "loading" | "ready" | "crashed";
  pid?: number;
  threads?: number;
  /** Threads per decode while several requests generate. */
  busyThreads?: number;
  contextSize?: number;
  activeRequests: number;
  queuedRequests: number;
  slots: number;
  size: number;
  /** Estimated memory in use (weights + KV cache + buffers). */
  memory: number;
  backend?: string;
  /** The engine hosting it (node-llama-cpp or llama-server). */
  engine?: string;
  /** It reads images (a projector is loaded). */
  vision?: boolean;
  gpuLayers?: number;
  /** GPU memory in use by this model (measured at load; 0 on CPU). */
  vram?: number;
  /** The KV cache's element type and flash attention it was loaded with. */
  kvCacheType: KvCacheType;
  flashAttention: FlashAttentionMode;
  /** ISO time when it unloads if idle; null when kept forever or busy. */
  expiresAt: string | null;
  restarts: number;
}
