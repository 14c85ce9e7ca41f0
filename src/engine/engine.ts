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
import type { ModelProfile } from "../core/profile.js";
import { AdmissionQueue } from "./admission.js";
import { chooseEngine, HOW_TO_GET_LLAMA_SERVER } from "./engines.js";
import { KeepAlive } from "./keepAlive.js";
import type { MemoryEstimate } from "./memory.js";
import { Residency } from "./residency.js";
import type { LoadOptions } from "./runner/protocol.js";
import { RunnerProcess } from "./runnerProcess.js";
import { checkImages, differs, estimateSlot, type Settings, type Slot, settingsFor, slotStatus } from "./slot.js";
import { chooseThreads } from "./threads.js";
import type { EngineOptions, LoadedModelStatus, ResolvedModel } from "./types.js";

export type { EngineEvent, EngineOptions, LoadedModelStatus, ModelResolver, ResolvedModel } from "./types.js";

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

  /**
   * A model name's profile (ProfileSource), as the store resolves the name; none for a name it does not have (a
   * route). The gateway applies it before metering and policy; the engine runs requests as they come.
   */
  async profile(name: string): Promise<ModelProfile | undefined> {
    return (await this.options.resolver.resolve(name).catch(() => undefined))?.profile;
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
    return settingsFor(this.options, loaded, wanted, model);
  }

  private estimate(model: ResolvedModel, settings: Settings, draft?: ResolvedModel): MemoryEstimate {
    return estimateSlot(this.options.sequences, model, settings, draft);
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
    checkImages(request, runner, slot);
    await this.admit(slot, runner, signal);
    try {
      yield* runner.generate(request, signal);
    } finally {
      this.release(slot, request.keepAliveMs);
    }
  }

  /** The prompt tokens a request would use (template and tools applied); loads the model if needed. */
  async countTokens(request: GenerateRequest): Promise<number> {
    const { runner, slot } = await this.acquire(request.model);
    checkImages(request, runner, slot);
    slot.admission.enter();
    try {
      return await runner.countTokens(request);
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
    const models = [...this.slots.values()].map((slot) => slotStatus(slot, this.options.sequences));
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
