import { freemem, totalmem } from "node:os";
import type {
  ChatEvent,
  EmbeddingRequest,
  EmbeddingResult,
  GenerateRequest,
  LoadSettings,
  ModelInfo,
  ModelPort,
} from "../core/chat.js";
import { FreeholdError, OverloadedError } from "../core/errors.js";
import { applyProfile, type ModelProfile } from "../core/profile.js";
import type { ModelSummary } from "../gguf/types.js";
import { chooseEngine, type EngineSetting, HOW_TO_GET_LLAMA_SERVER, type LlamaServerLocation } from "./engines.js";
import { estimateModelMemory, formatMemory, type MemoryEstimate } from "./memory.js";
import type { LoadOptions } from "./runner/protocol.js";
import { type RunnerDiagnostic, RunnerProcess, type RunnerStartOptions } from "./runnerProcess.js";
import { chooseBusyThreads, chooseThreads } from "./threads.js";

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
  /** ISO time when it unloads if idle; null when kept forever or busy. */
  expiresAt: string | null;
  restarts: number;
}

interface Waiter {
  admit: () => void;
  reject: (error: unknown) => void;
}

/** What a model is loaded with; a request can ask for other values (Ollama's options), which reloads it. */
interface Settings {
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
  /** Requests admitted to the runner (at most one per sequence). */
  active: number;
  /** Requests waiting for a sequence, oldest first. */
  queue: Waiter[];
  /** The last request's keep-alive wins, as in Ollama. */
  keepAliveMs: number;
  idleTimer?: NodeJS.Timeout;
  expiresAt: number | null;
}

/**
 * The local engine as a ModelPort: loads models into runner processes on first use, keeps them for a while,
 * restarts a runner that died on the next request, and unloads idle ones.
 */
export class Engine implements ModelPort {
  private readonly slots = new Map<string, Slot>();
  private lastStartError: string | undefined;
  private closed = false;

  constructor(private readonly options: EngineOptions) {}

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
    let slot = this.slots.get(model.name);
    while (slot?.reloading) {
      await slot.reloading;
      slot = this.slots.get(model.name);
    }
    // Settings the request leaves out keep what the model had.
    const settings = this.settingsFor(slot?.settings, wanted);
    if (slot && !slot.runner && !slot.loading && differs(slot.settings, wanted)) {
      // Crashed: the next load simply uses the new settings.
      slot.settings = settings;
      slot.estimate = estimateModelMemory(model.summary, settings.contextSize, this.options.sequences + 1);
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
        name: model.name,
        digest: model.digest,
        summary: model.summary,
        settings,
        // The runner keeps one slot more than it admits (see SequencePool).
        estimate: estimateModelMemory(model.summary, settings.contextSize, this.options.sequences + 1),
        lastUsed: Date.now(),
        crashed: false,
        restarts: 0,
        active: 0,
        queue: [],
        keepAliveMs: this.options.keepAliveMs,
        expiresAt: null,
      };
      this.slots.set(model.name, slot);
    }
    slot.profile = model.profile;
    slot.projector = model.projector;
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    slot.expiresAt = null;
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

  private settingsFor(loaded: Settings | undefined, wanted: LoadSettings | undefined): Settings {
    return {
      contextSize: wanted?.contextSize ?? loaded?.contextSize ?? this.options.contextSize,
      threads: wanted?.threads ?? loaded?.threads ?? this.options.threads,
      gpuLayers: wanted?.gpuLayers ?? loaded?.gpuLayers ?? this.options.gpuLayers ?? "auto",
    };
  }

  /**
   * Waits until nothing runs or waits on the model (as Ollama does before reloading with other options), then
   * unloads it; the caller loads it again with its settings. Bounded by the queue timeout.
   */
  private async reloadWhenIdle(slot: Slot): Promise<void> {
    if (slot.active > 0 || slot.queue.length > 0 || slot.loading) {
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
            if (slot.active === 0 && slot.queue.length === 0) slot.onIdle?.();
          });
        void slot.loading?.then(checkIdle, checkIdle);
      });
    }
    if (this.slots.get(slot.name) === slot) {
      this.slots.delete(slot.name);
      if (slot.idleTimer) clearTimeout(slot.idleTimer);
      await slot.runner?.stop();
      this.options.onEvent?.({ type: "model-unloaded", model: slot.name });
    }
  }

  private budget(): number {
    return this.options.memoryBudget > 0 ? this.options.memoryBudget : Math.floor(totalmem() * 0.9);
  }

  /**
   * Before loading, checks the model's estimated memory against the budget and what the machine has free, unloading
   * least-recently-used idle models to make room. A model that cannot fit even alone is refused before anything is
   * allocated, never left for the OS to kill.
   */
  private async makeRoom(slot: Slot): Promise<void> {
    const need = slot.estimate.total;
    const budget = this.budget();
    const detail = `weights ${formatMemory(slot.estimate.weights)}, KV cache ${formatMemory(slot.estimate.kvCache)} for ${this.options.sequences} slot(s) of ${slot.estimate.contextSize} tokens`;
    const lower = slot.settings.contextSize !== this.options.contextSize ? "num_ctx" : "--context-size";
    if (need > budget) {
      throw new FreeholdError(
        `${slot.name} needs about ${formatMemory(need)} to load (${detail}), more than the memory budget of ${formatMemory(budget)}. Lower ${lower} or --parallel, or raise FREEHOLD_MEMORY_BUDGET.`,
        { code: "insufficient_memory", status: 500, type: "server_error" },
      );
    }
    const others = () => [...this.slots.values()].filter((other) => other !== slot && (other.runner || other.loading));
    let used = others().reduce((sum, other) => sum + other.estimate.total, 0);
    let freed = 0;
    const free = (this.options.freeMemory ?? freemem)();
    while (need > Math.min(budget - used, free + freed)) {
      const victim = others()
        .filter((other) => other.active === 0 && other.queue.length === 0 && !other.loading)
        .sort((a, b) => a.lastUsed - b.lastUsed)[0];
      if (!victim) {
        const room = Math.max(0, Math.min(budget - used, free + freed));
        throw new OverloadedError(
          `not enough memory to load ${slot.name} (needs about ${formatMemory(need)}, ${formatMemory(room)} available) while the loaded models are busy; retry shortly`,
          "insufficient_memory_busy",
          5,
        );
      }
      await this.unload(victim.name);
      used -= victim.estimate.total;
      freed += victim.estimate.total;
    }
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
    // A thread count set by hand holds throughout; the automatic one may grow while several requests decode.
    const busyThreads = slot.settings.threads > 0 ? threads : chooseBusyThreads(model.summary);
    const load: LoadOptions = {
      paths: model.paths,
      contextSize: slot.settings.contextSize,
      threads,
      busyThreads,
      sequences: this.options.sequences,
      batchSize: 512,
      gpuLayers: slot.settings.gpuLayers,
      flushIntervalMs: this.options.flushIntervalMs ?? 4,
      ...(model.profile?.template ? { chatTemplate: model.profile.template } : {}),
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

  /**
   * Waits for a free sequence in FIFO order. Past `maxQueue` waiting, or after `queueTimeoutMs`, the request gets a
   * 503 with Retry-After; a client that gives up (signal) leaves the queue at once.
   */
  private async admit(slot: Slot, runner: RunnerProcess, signal?: AbortSignal): Promise<void> {
    const capacity = runner.info?.sequences ?? 1;
    if (slot.active < capacity && slot.queue.length === 0) {
      slot.active++;
      return;
    }
    if (slot.queue.length >= this.options.maxQueue) {
      throw new OverloadedError(
        `${slot.name} is busy: all ${capacity} slot(s) are answering and ${slot.queue.length} request(s) are waiting; retry shortly`,
        "queue_full",
        2,
      );
    }
    signal?.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        admit: () => {
          cleanup();
          slot.active++;
          resolve();
        },
        reject: (error) => {
          cleanup();
          reject(error);
        },
      };
      const leave = (error: unknown) => {
        const index = slot.queue.indexOf(waiter);
        if (index !== -1) slot.queue.splice(index, 1);
        waiter.reject(error);
      };
      const timer = setTimeout(
        () =>
          leave(
            new OverloadedError(
              `${slot.name} stayed busy for ${Math.round(this.options.queueTimeoutMs / 1000)} s while this request waited for a slot; retry later`,
              "queue_timeout",
              5,
            ),
          ),
        this.options.queueTimeoutMs,
      );
      const onAbort = () => leave(signal?.reason ?? new Error("aborted"));
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      slot.queue.push(waiter);
    });
  }

  private release(slot: Slot, keepAliveMs: number | undefined): void {
    slot.active--;
    if (keepAliveMs !== undefined) slot.keepAliveMs = keepAliveMs;
    const next = slot.queue.shift();
    if (next) {
      next.admit();
      return;
    }
    if (slot.active > 0 || this.closed) return;
    if (slot.onIdle) {
      slot.onIdle();
      return;
    }
    const keepAlive = slot.keepAliveMs;
    if (keepAlive < 0) return;
    if (keepAlive === 0) {
      void this.unload(slot.name);
      return;
    }
    slot.expiresAt = Date.now() + keepAlive;
    slot.idleTimer = setTimeout(() => void this.unload(slot.name), keepAlive);
    slot.idleTimer.unref();
  }

  /** Loads a model ahead of requests; it then idles out after `keepAliveMs` like any other. */
  async preload(name: string, keepAliveMs?: number): Promise<void> {
    const { slot } = await this.acquire(name);
    slot.active++;
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
    if (slot.active > 0 || slot.queue.length > 0) {
      slot.keepAliveMs = 0;
      return;
    }
    this.slots.delete(name);
    if (slot.idleTimer) clearTimeout(slot.idleTimer);
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
    slot.active++;
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
        activeRequests: slot.active,
        queuedRequests: slot.queue.length,
        slots: this.options.sequences,
        size: slot.summary.size,
        memory: slot.estimate.total,
        expiresAt: slot.expiresAt === null ? null : new Date(slot.expiresAt).toISOString(),
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
        if (slot.idleTimer) clearTimeout(slot.idleTimer);
        const runner = slot.runner ?? (await slot.loading?.catch(() => undefined));
        await runner?.stop();
      }),
    );
  }
}
