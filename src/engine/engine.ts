import { freemem, totalmem } from "node:os";
import type {
  ChatEvent,
  EmbeddingRequest,
  EmbeddingResult,
  GenerateRequest,
  LoadSettings,
  ModelInfo,
  ModelPort,
  RerankRequest,
  RerankResult,
} from "../core/chat.js";
import { FreeholdError, OverloadedError } from "../core/errors.js";
import {
  type FlashAttentionMode,
  type KvCacheType,
  type MemorySettings,
  memorySettingsProblem,
} from "../core/memorySettings.js";
import { applyProfile, type ModelProfile } from "../core/profile.js";
import type { ModelSummary } from "../gguf/types.js";
import { AdmissionQueue } from "./admission.js";
import { chooseEngine, type EngineSetting, HOW_TO_GET_LLAMA_SERVER, type LlamaServerLocation } from "./engines.js";
import { KeepAlive } from "./keepAlive.js";
import { estimateModelMemory, kvCacheTypeProblem, type MemoryEstimate } from "./memory.js";
import { Residency } from "./residency.js";
import type { LoadOptions } from "./runner/protocol.js";
import { type RunnerDiagnostic, RunnerProcess, type RunnerStartOptions } from "./runnerProcess.js";
import { chooseThreads } from "./threads.js";

/** True when a request asks for a setting the loaded model does not have (left-out values accept any). */
function differs(loaded: Settings, wanted: LoadSettings | undefined): boolean {
  if (!wanted) return false;
  return (
    (wanted.contextSize !== undefined && wanted.contextSize !== loaded.contextSize) ||
    (wanted.threads !== undefined && wanted.threads !== loaded.threads) ||
    (wanted.gpuLayers !== undefined && wanted.gpuLayers !== loaded.gpuLayers)
  );
}

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
  /** A profile's defaults, prompts and template (`freehold create`), applied to every request for this name. */
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

/**
 * What a model is loaded with; a request can ask for other values (Ollama's options), which reloads it. The KV cache
 * type and flash attention come from the server's settings or the model's profile, never from a request.
 */
interface Settings extends MemorySettings {
  contextSize: number;
  /** 0 = chosen per model. */
  threads: number;
  gpuLayers: "auto" | "max" | number;
}

interface Slot {
  name: string;
  digest: string;
  /** The model's profile as last resolved. */
  profile?: ModelProfile;
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

/**
 * The local engine as a ModelPort: loads models into runner processes on first use, keeps them for a while,
 * restarts a runner that died on the next request, and unloads idle ones. The policies live in their own modules
 * (admission.ts: the per-model queue; residency.ts: the memory budget and eviction; keepAlive.ts: idle unloading);
 * this class ties them to runner processes.
 */
export class Engine implements ModelPort {
  private readonly slots = new Map<string, Slot>();
  private readonly residency: Residency;
  private lastStartError: string | undefined;
  private closed = false;

  constructor(private readonly options: EngineOptions) {
    this.residency = new Residency({
      memoryBudget: options.memoryBudget,
      totalMemory: totalmem,
      freeMemory: options.freeMemory ?? freemem,
      sequences: options.sequences,
    });
  }

  async listModels(): Promise<ModelInfo[]> {
    const models = await this.options.resolver.list();
    return models.map((model) => ({
      name: model.name,
      created: Math.floor(Date.parse(model.addedAt) / 1000) || 0,
      ownedBy: "freehold",
      contextLength: model.summary.contextLength,
    }));
  }

  /**
   * Loads (or returns the loaded) runner for a model name; concurrent callers share one load. `wanted` settings
   * that differ from the loaded ones reload the model once it is idle.
   */
  async acquire(name: string, wanted?: LoadSettings): Promise<{ runner: RunnerProcess; slot: Slot }> {
    if (this.closed)
      throw new FreeholdError("the server is shutting down", {
        code: "shutting_down",
        status: 503,
        type: "overloaded_error",
        retryable: true,
      });
    const model = await this.options.resolver.resolve(name);
    // Resolved before the slot is looked up: no await may fall between finding no slot and making one, or
    // concurrent first requests would each load the model.
    const draft = await this.draftFor(model);
    let slot = this.slots.get(model.name);
    while (slot?.reloading) {
      await slot.reloading;
      slot = this.slots.get(model.name);
    }
    // Settings the request leaves out keep what the model had.
    const settings = this.settingsFor(slot?.settings, wanted, model);
    if (slot && !slot.runner && !slot.loading && differs(slot.settings, wanted)) {
      // Crashed: the next load simply uses the new settings.
      slot.settings = settings;
      slot.estimate = this.estimate(model, settings, slot.draft);
    }
    if (slot && (slot.runner || slot.loading) && differs(slot.settings, wanted)) {
      const reloading = slot;
      reloading.reloading = this.reloadWhenIdle(reloading).finally(() => {
        reloading.reloading = undefined;
      });
      await reloading.reloading;
      slot = this.slots.get(model.name);
    }
    if (!slot) {
      slot = {
        ...(draft ? { draft } : {}),
        name: model.name,
        digest: model.digest,
        summary: model.summary,
        settings,
        estimate: this.estimate(model, settings, draft),
        lastUsed: Date.now(),
        crashed: false,
        restarts: 0,
        admission: new AdmissionQueue({
          name: model.name,
          maxQueue: this.options.maxQueue,
          timeoutMs: this.options.queueTimeoutMs,
        }),
        keepAlive: new KeepAlive(this.options.keepAliveMs),
      };
      this.slots.set(model.name, slot);
    }
    slot.profile = model.profile;
    slot.projector = model.projector;
    slot.keepAlive.cancel();
    slot.lastUsed = Date.now();
    if (slot.runner && slot.runner.state === "ready") return { runner: slot.runner, slot };
    if (!slot.loading) {
      if (slot.crashed) slot.restarts++;
      const loadingSlot = slot;
      slot.loading = this.makeRoom(loadingSlot)
        .then(() => this.load(loadingSlot, model))
        .catch((error: unknown) => {
          if (this.slots.get(loadingSlot.name) === loadingSlot && !loadingSlot.runner)
            this.slots.delete(loadingSlot.name);
          throw error;
        })
        .finally(() => {
          loadingSlot.loading = undefined;
        });
    }
    return { runner: await slot.loading, slot };
  }

  private settingsFor(loaded: Settings | undefined, wanted: LoadSettings | undefined, model: ResolvedModel): Settings {
    const settings: Settings = {
      contextSize: wanted?.contextSize ?? loaded?.contextSize ?? this.options.contextSize,
      threads: wanted?.threads ?? loaded?.threads ?? this.options.threads,
      gpuLayers: wanted?.gpuLayers ?? loaded?.gpuLayers ?? this.options.gpuLayers ?? "auto",
      kvCacheType: model.profile?.kvCacheType ?? this.options.kvCacheType ?? "f16",
      flashAttention: model.profile?.flashAttention ?? this.options.flashAttention ?? "auto",
    };
    // As Ollama does, a model that cannot have a quantized cache gets f16 (ps shows it; the log says why).
    const narrow = kvCacheTypeProblem(model.summary, settings.kvCacheType);
    if (narrow) {
      this.options.onEvent?.({
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

  private estimate(model: ResolvedModel, settings: Settings, draft?: ResolvedModel): MemoryEstimate {
    // The runner keeps one slot more than it admits (see SequencePool).
    const options = { batchSize: 512, kvCacheType: settings.kvCacheType, flashAttention: settings.flashAttention };
    const own = estimateModelMemory(model.summary, settings.contextSize, this.options.sequences + 1, options);
    if (!draft) return own;
    // A draft model loads beside it with a context of the same shape (f16: the draft's own cache is not quantized).
    const extra = estimateModelMemory(draft.summary, settings.contextSize, this.options.sequences + 1, {
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

  /** The draft model a profile names, resolved in the store (a name that is not there is the profile's error). */
  private async draftFor(model: ResolvedModel): Promise<ResolvedModel | undefined> {
    const name = model.profile?.draft;
    if (!name) return undefined;
    try {
      return await this.options.resolver.resolve(name);
    } catch {
      throw new FreeholdError(
        `${model.name}'s profile names the draft model "${name}", which is not in the store; pull or import it, or re-create the profile without draft`,
        { code: "draft_model_not_found", status: 500, type: "server_error" },
      );
    }
  }

  /**
   * Waits until nothing runs or waits on the model (as Ollama does before reloading with other options), then
   * unloads it; the caller loads it again with its settings. Bounded by the queue timeout.
   */
  private async reloadWhenIdle(slot: Slot): Promise<void> {
    if (!slot.admission.idle || slot.loading) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          slot.onIdle = undefined;
          reject(
            new OverloadedError(
              `${slot.name} stayed busy for ${Math.round(this.options.queueTimeoutMs / 1000)} s while this request waited to reload it with other options (num_ctx, num_thread, num_gpu); retry later`,
              "queue_timeout",
              5,
            ),
          );
        }, this.options.queueTimeoutMs);
        slot.onIdle = () => {
          clearTimeout(timer);
          slot.onIdle = undefined;
          resolve();
        };
        // A load in progress: once the requests that waited for it are admitted (after this turn), it may be idle.
        const checkIdle = () =>
          setImmediate(() => {
            if (slot.admission.idle) slot.onIdle?.();
          });
        void slot.loading?.then(checkIdle, checkIdle);
      });
    }
    if (this.slots.get(slot.name) === slot) {
      this.slots.delete(slot.name);
      slot.keepAlive.cancel();
      await slot.runner?.stop();
      this.options.onEvent?.({ type: "model-unloaded", model: slot.name });
    }
  }

  /** Unloads least-recently-used idle models until `slot` fits (residency.ts). */
  private makeRoom(slot: Slot): Promise<void> {
    return this.residency.makeRoom(
      {
        name: slot.name,
        estimate: slot.estimate,
        contextSetting: slot.settings.contextSize !== this.options.contextSize ? "num_ctx" : "--context-size",
      },
      () =>
        [...this.slots.values()]
          .filter((other) => other !== slot && (other.runner || other.loading))
          .map((other) => ({
            name: other.name,
            memory: other.estimate.total,
            busy: !other.admission.idle || other.loading !== undefined,
            lastUsed: other.lastUsed,
          })),
      (name) => this.unload(name),
    );
  }

  private async load(slot: Slot, model: ResolvedModel): Promise<RunnerProcess> {
    const engine = chooseEngine(
      this.options.engine ?? "auto",
      {
        name: model.name,
        ...(model.projector ? { projector: model.projector } : {}),
        ...(model.profile?.engine ? { engine: model.profile.engine } : {}),
      },
      this.options.llamaServer ?? { detail: `no llama-server: ${HOW_TO_GET_LLAMA_SERVER}` },
    );
    const threads = slot.settings.threads > 0 ? slot.settings.threads : chooseThreads(model.summary);
    const load: LoadOptions = {
      paths: model.paths,
      contextSize: slot.settings.contextSize,
      threads,
      sequences: this.options.sequences,
      batchSize: 512,
      gpuLayers: slot.settings.gpuLayers,
      kvCacheType: slot.settings.kvCacheType,
      flashAttention: slot.settings.flashAttention,
      flushIntervalMs: this.options.flushIntervalMs ?? 4,
      ...(model.profile?.template ? { chatTemplate: model.profile.template } : {}),
      ...(slot.draft ? { draft: { paths: slot.draft.paths, name: slot.draft.name, model: model.name } } : {}),
      engine: engine.kind,
      ...(engine.binary ? { llamaServer: engine.binary } : {}),
      ...(engine.kind === "llama-server" && model.projector ? { projector: model.projector } : {}),
    };
    this.options.onEvent?.({ type: "model-loading", model: slot.name });
    const start = this.options.startRunner ?? RunnerProcess.start;
    try {
      const runner = await start({
        load,
        env: this.options.environment({ UV_THREADPOOL_SIZE: "1" }),
        onDiagnostic: (diagnostic) =>
          this.options.onEvent?.({ type: "runner-diagnostic", model: slot.name, ...diagnostic }),
        onExit: ({ code, signal, expected }) => {
          if (expected || slot.runner !== runner) return;
          slot.crashed = true;
          slot.runner = undefined;
          this.options.onEvent?.({ type: "runner-crashed", model: slot.name, detail: signal ?? `exit ${code}` });
        },
      });
      slot.runner = runner;
      slot.crashed = false;
      this.lastStartError = undefined;
      this.options.onEvent?.({
        type: "model-loaded",
        model: slot.name,
        loadMs: runner.info?.loadMs ?? 0,
        threads: runner.info?.threads ?? threads,
      });
      return runner;
    } catch (error) {
      this.lastStartError = (error as Error).message;
      this.options.onEvent?.({ type: "model-load-failed", model: slot.name, error: this.lastStartError });
      throw error;
    }
  }

  /** Waits for a free sequence (admission.ts); a 503 when the queue is full or the wait too long. */
  private admit(slot: Slot, runner: RunnerProcess, signal?: AbortSignal): Promise<void> {
    return slot.admission.admit(runner.info?.sequences ?? 1, signal);
  }

  private release(slot: Slot, keepAliveMs: number | undefined): void {
    slot.keepAlive.set(keepAliveMs);
    if (!slot.admission.release() || this.closed) return;
    if (slot.onIdle) {
      slot.onIdle();
      return;
    }
    slot.keepAlive.idle(() => void this.unload(slot.name));
  }

  /** Loads a model ahead of requests; it then idles out after `keepAliveMs` like any other. */
  async preload(name: string, keepAliveMs?: number): Promise<void> {
    const { slot } = await this.acquire(name);
    slot.admission.enter();
    this.release(slot, keepAliveMs);
  }

  /** Unloads a model by the name a client uses (resolved like a request); false when it was not loaded. */
  async unloadByName(name: string): Promise<boolean> {
    const model = await this.options.resolver.resolve(name);
    if (!this.slots.has(model.name)) return false;
    await this.unload(model.name);
    return true;
  }

  /** Unloads a model now if nothing is running on it; otherwise it unloads when its last request ends. */
  async unload(name: string): Promise<void> {
    const slot = this.slots.get(name);
    if (!slot) return;
    if (!slot.admission.idle) {
      slot.keepAlive.set(0);
      return;
    }
    this.slots.delete(name);
    slot.keepAlive.cancel();
    await slot.runner?.stop();
    this.options.onEvent?.({ type: "model-unloaded", model: name });
  }

  async *generate(request: GenerateRequest, signal?: AbortSignal): AsyncGenerator<ChatEvent> {
    const { runner, slot } = await this.acquire(request.model, request.load);
    this.checkImages(request, runner, slot);
    await this.admit(slot, runner, signal);
    try {
      yield* runner.generate(applyProfile(request, slot.profile), signal);
    } finally {
      this.release(slot, request.keepAliveMs);
    }
  }

  /** An image for a model that cannot read it is a 400 that says what would make it readable. */
  private checkImages(request: GenerateRequest, runner: RunnerProcess, slot: Slot): void {
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

  /** The prompt tokens a request would use (template and tools applied); loads the model if needed. */
  async countTokens(request: GenerateRequest): Promise<number> {
    const { runner, slot } = await this.acquire(request.model);
    this.checkImages(request, runner, slot);
    slot.admission.enter();
    try {
      return await runner.countTokens(applyProfile(request, slot.profile));
    } finally {
      // Re-arms the idle timer that acquire() cleared.
      this.release(slot, undefined);
    }
  }

  async embed(request: EmbeddingRequest, signal?: AbortSignal): Promise<EmbeddingResult> {
    const { runner, slot } = await this.acquire(request.model);
    await this.admit(slot, runner, signal);
    try {
      return await runner.embed(request.input);
    } finally {
      this.release(slot, undefined);
    }
  }

  /** Scores documents against a query; admitted like any request (it takes a slot while it runs). */
  async rerank(request: RerankRequest, signal?: AbortSignal): Promise<RerankResult> {
    const { runner, slot } = await this.acquire(request.model);
    await this.admit(slot, runner, signal);
    try {
      return await runner.rank(request.query, request.documents);
    } finally {
      this.release(slot, undefined);
    }
  }

  /** The runner hosting a model, if loaded (tests and fault drills use it). */
  runnerFor(name: string): RunnerProcess | undefined {
    return this.slots.get(name)?.runner;
  }

  status(): { loading: boolean; lastStartError: string | undefined; models: LoadedModelStatus[] } {
    const models: LoadedModelStatus[] = [];
    for (const slot of this.slots.values()) {
      models.push({
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
        slots: this.options.sequences,
        size: slot.summary.size,
        memory: slot.estimate.total,
        kvCacheType: slot.settings.kvCacheType,
        flashAttention: slot.runner?.info?.flashAttention ?? slot.settings.flashAttention,
        expiresAt: slot.keepAlive.expiresAt === null ? null : new Date(slot.keepAlive.expiresAt).toISOString(),
        restarts: slot.restarts,
      });
    }
    return { loading: models.some((m) => m.state === "loading"), lastStartError: this.lastStartError, models };
  }

  /** Stops every runner. In-flight requests should have been drained (or aborted) by the caller. */
  async close(): Promise<void> {
    this.closed = true;
    const runners = [...this.slots.values()];
    this.slots.clear();
    await Promise.all(
      runners.map(async (slot) => {
        slot.keepAlive.cancel();
        const runner = slot.runner ?? (await slot.loading?.catch(() => undefined));
        await runner?.stop();
      }),
    );
  }
}
