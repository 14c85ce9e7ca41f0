/**
 * The composition root: the one place that wires concrete parts (store, engine, gateway, HTTP) together.
 */
import { randomUUID } from "node:crypto";
import { mkdir, stat } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { ServerType } from "@hono/node-server";
import type { Hono } from "hono";
import { type Config, type ConfigOverrides, childEnvironment } from "./config/config.js";
import { ConfigFileError, loadSettings, type Settings } from "./config/fileConfig.js";
import { auditSource, ControlPlane } from "./control/controlPlane.js";
import { httpFacade } from "./control/httpFacade.js";
import type { Logger } from "./control/logger.js";
import type { ModelCatalog, ModelDescription } from "./core/catalog.js";
import {
  type ChatEvent,
  type ChatMessage,
  type CompletionRequest,
  type EmbeddingResult,
  type FoldedAnswer,
  foldChatEvents,
  type GenerationLimits,
  type SamplingOptions,
} from "./core/chat.js";
import { type AuditSink, libraryContext } from "./core/context.js";
import { FreeholdError, NotFoundError, StoreError, treatAsPrivateDirectory, withoutPaths } from "./core/errors.js";
import { Engine, type EngineEvent, type ModelResolver, type ResolvedModel } from "./engine/engine.js";
import { enginesDirectory, locateLlamaServer } from "./engine/engines.js";
import { renderHtmlReport } from "./eval/html.js";
import { EvalStore } from "./eval/store.js";
import { summarize } from "./eval/summary.js";
import { Gateway } from "./gateway/gateway.js";
import { createApp } from "./http/app.js";
import type { AppEnv } from "./http/appEnv.js";
import { McpHub } from "./mcp/hub.js";
import {
  hubClientFor,
  lockedModelsCheck,
  ModelPuller,
  profileDescription,
  profileMcpProblems,
  storeSupply,
} from "./modelSupply.js";
import { Router } from "./routing/router.js";
import { buildRoutingTable } from "./routing/table.js";
import type { Manifest } from "./store/index.js";
import { ModelStore } from "./store/store.js";
import { VERSION } from "./version.js";

/** The model an empty store gets: the real stories260K shipped in the package (assets/demo), so it answers offline. */
export const DEMO_MODEL = "demo:stories";

/** The packaged demo model file; the same relative place from src/ (tsx) and dist/ (the build). */
export const DEMO_MODEL_FILE = fileURLToPath(new URL("../assets/demo/stories260K.gguf", import.meta.url));

/** Adapts the store to what the engine needs, turning "no such name" into the API's model_not_found. */
export function storeResolver(
  store: ModelStore,
  options: { allow?: (manifest: Manifest) => void } = {},
): ModelResolver {
  // A request resolves its model name on the hot path: remember each answer with its manifest's mtime, and re-read
  // only when the manifest changed (a stat instead of two reads, a schema parse and a stat per blob).
  const cache = new Map<string, { model: ResolvedModel; manifestPath: string; mtimeMs: number }>();
  const toResolved = async (name: string): Promise<ResolvedModel> => {
    const cached = cache.get(name);
    if (cached) {
      const mtimeMs = await stat(cached.manifestPath).then(
        (info) => info.mtimeMs,
        () => -1,
      );
      if (mtimeMs === cached.mtimeMs) return cached.model;
      cache.delete(name);
    }
    try {
      const details = await store.show(name);
      options.allow?.(details.manifest);
      const paths = await store.resolve(name);
      const model: ResolvedModel = {
        name: details.name,
        digest: details.manifest.files[0]?.digest ?? "",
        paths,
        summary: details.manifest.summary,
        addedAt: details.manifest.addedAt,
        ...(details.manifest.profile ? { profile: details.manifest.profile } : {}),
        ...(details.projectorPath ? { projector: details.projectorPath } : {}),
      };
      const mtimeMs = (await stat(details.manifestPath)).mtimeMs;
      if (cache.size > 1000) cache.clear();
      // Files imported by reference are checked (size, mtime) on every resolve: they can change outside the store.
      if (!details.manifest.files.some((file) => file.link)) {
        cache.set(name, { model, manifestPath: details.manifestPath, mtimeMs });
      }
      return model;
    } catch (error) {
      if (error instanceof NotFoundError || (error instanceof StoreError && error.status === 400)) {
        throw new NotFoundError(
          `The model '${name}' does not exist here. See installed models with \`freehold list\`; add one with \`freehold import FILE --name ${name}\`.`,
          "model_not_found",
        );
      }
      throw error;
    }
  };
  return {
    resolve: toResolved,
    async list() {
      const entries = await store.list();
      const models: ResolvedModel[] = [];
      for (const entry of entries) {
        const details = await store.show(entry.name).catch(() => undefined);
        if (details)
          models.push({
            name: details.name,
            digest: details.manifest.files[0]?.digest ?? "",
            paths: details.blobPaths,
            summary: details.manifest.summary,
            addedAt: details.manifest.addedAt,
          });
      }
      return models;
    },
  };
}

function describeModel(details: Awaited<ReturnType<ModelStore["show"]>>): ModelDescription {
  const summary = details.manifest.summary;
  return {
    name: details.name,
    digest: details.manifest.files[0]?.digest ?? "",
    size: details.manifest.files.reduce((total, file) => total + file.size, 0),
    modifiedAt: new Date(details.manifest.addedAt),
    architecture: summary.architecture,
    parameters: summary.parameters,
    parameterSize: summary.parameterSize,
    quantization: summary.fileType,
    contextLength: summary.contextLength,
    embeddingLength: summary.embeddingLength,
    chatTemplate: summary.chatTemplate,
    license: summary.license,
    synthetic: summary.synthetic,
    ...(details.manifest.projector
      ? { projector: { digest: details.manifest.projector.digest, size: details.manifest.projector.size } }
      : {}),
    ...profileDescription(details.manifest),
    facts: {
      "general.architecture": summary.architecture,
      "general.name": summary.name,
      "general.parameter_count": summary.parameters,
      "general.file_type": summary.fileType,
      [`${summary.architecture}.context_length`]: summary.contextLength,
      [`${summary.architecture}.embedding_length`]: summary.embeddingLength,
      [`${summary.architecture}.block_count`]: summary.blockCount,
      [`${summary.architecture}.feed_forward_length`]: summary.feedForwardLength,
      [`${summary.architecture}.attention.head_count`]: summary.headCount,
      [`${summary.architecture}.attention.head_count_kv`]: summary.headCountKv,
      [`${summary.architecture}.vocab_size`]: summary.vocabularySize,
      "tokenizer.ggml.model": summary.tokenizer,
      "freehold.synthetic": summary.synthetic,
    },
  };
}

/** The store as the API surfaces see it; unknown names become the API's model_not_found. */
export function storeCatalog(store: ModelStore): ModelCatalog {
  const notFound = (name: string, error: unknown): never => {
    if (error instanceof NotFoundError || (error instanceof StoreError && error.status === 400)) {
      throw new NotFoundError(`The model '${name}' does not exist here.`, "model_not_found");
    }
    throw error;
  };
  return {
    async list() {
      const entries = await store.list();
      const described: ModelDescription[] = [];
      for (const entry of entries) {
        const details = await store.show(entry.name).catch(() => undefined);
        if (details) described.push(describeModel(details));
      }
      return described;
    },
    async describe(name) {
      return describeModel(await store.show(name).catch((error: unknown) => notFound(name, error)));
    },
    async copy(source, destination) {
      await store.copy(source, destination).catch((error: unknown) => notFound(source, error));
    },
    async remove(name) {
      await store.remove(name).catch((error: unknown) => notFound(name, error));
    },
  };
}

/**
 * With an empty store, installs the packaged stories260K as demo:stories (a real 260K-parameter model trained on
 * children's stories, 1.2 MB, MIT) so the server, or a library user, gets a real answer out of the box with no network.
 * Returns true when it did. (The synthetic presets stay for tests and benchmarks: `freehold synth`.)
 * @example
 * const freehold = await Freehold.open();
 * await ensureDemoModel(freehold.store);
 */
export async function ensureDemoModel(store: ModelStore): Promise<boolean> {
  if ((await store.list()).length > 0) return false;
  await mkdir(store.home, { recursive: true });
  await store.import(DEMO_MODEL_FILE, DEMO_MODEL);
  return true;
}

export interface ChatOptions extends SamplingOptions, GenerationLimits {
  model: string;
  messages: ChatMessage[];
  signal?: AbortSignal;
}

export interface CompleteOptions extends SamplingOptions, GenerationLimits {
  model: string;
  prompt: string;
  signal?: AbortSignal;
}

function split(options: SamplingOptions & GenerationLimits): { sampling: SamplingOptions; limits: GenerationLimits } {
  const { maxTokens, stop, ignoreEos, ...rest } = options as SamplingOptions &
    GenerationLimits &
    Record<string, unknown>;
  const sampling: SamplingOptions = {};
  for (const key of [
    "temperature",
    "topP",
    "topK",
    "minP",
    "repeatPenalty",
    "presencePenalty",
    "frequencyPenalty",
    "repeatLastN",
    "seed",
  ] as const) {
    if (rest[key] !== undefined) sampling[key] = rest[key] as number;
  }
  const limits: GenerationLimits = {};
  if (maxTokens !== undefined) limits.maxTokens = maxTokens;
  if (stop !== undefined) limits.stop = stop;
  if (ignoreEos !== undefined) limits.ignoreEos = ignoreEos;
  return { sampling, limits };
}

/**
 * freehold as a library: the same store, engine and calls the server uses, in your process.
 * @example
 * const freehold = await Freehold.open({ home: "/tmp/fh" });
 * for await (const event of freehold.chat({ model: "demo:tiny", messages: [{ role: "user", content: "hi" }] })) {
 *   if (event.type === "text-delta") process.stdout.write(event.text);
 * }
 * await freehold.close();
 */
export class Freehold implements AsyncDisposable {
  private constructor(
    readonly config: Config,
    readonly store: ModelStore,
    readonly engine: Engine,
    readonly gateway: Gateway,
    /** Routes, providers and privacy policy from freehold.yaml (with none, everything stays local). */
    readonly router: Router,
    readonly settings: Settings,
    /** Keys, limits, the usage ledger, audit trail and metrics ($FREEHOLD_HOME/freehold.db). */
    readonly control: ControlPlane,
    /** MCP servers from freehold.yaml (`mcp_servers`), started on first use (docs/mcp.md). */
    readonly mcp: McpHub,
  ) {}

  static async open(
    overrides: ConfigOverrides & {
      onEngineEvent?: (event: EngineEvent) => void;
      /** freehold.yaml to read (default $FREEHOLD_CONFIG, else $FREEHOLD_HOME/freehold.yaml when present). */
      configPath?: string;
      /** Forbid egress even when remote providers are configured (default FREEHOLD_OFFLINE, else the file's). */
      offline?: boolean;
      /** Where routing decisions are recorded besides the in-memory log `explain` reads. */
      audit?: AuditSink;
      /** Serve only the models this lockfile pins (`serve --locked`). */
      lockfile?: string;
      /**
       * Where request log lines (pino JSON, or readable lines on a TTY) go. An embedded freehold is quiet by default:
       * nothing is written to the host program's stdout unless this is given (`freehold serve` passes stdout;
       * `freehold mcp` keeps stdout for the protocol).
       */
      logOutput?: NodeJS.WritableStream;
    } = {},
  ): Promise<Freehold> {
    const { onEngineEvent, configPath, offline, audit, lockfile, logOutput, ...configOverrides } = overrides;
    const settings = loadSettings({
      overrides: configOverrides,
      ...(configPath ? { configPath } : {}),
      ...(offline !== undefined ? { offline } : {}),
    });
    const config = settings.config;
    const store = new ModelStore({ home: config.home });
    // Error messages name the store (model not found, a missing blob): clients get <path> instead.
    treatAsPrivateDirectory(config.home);
    // A profile that attaches a server this file does not configure is refused as a route naming one is.
    const mcpProblems = await profileMcpProblems(store, Object.keys(settings.file?.mcp_servers ?? {}));
    if (mcpProblems.length > 0) throw new ConfigFileError(mcpProblems.join("\n"), mcpProblems);
    // The engine starts before the control plane (its logger): events that arrive in between have nowhere to go.
    let logger: Logger | undefined;
    const engine = new Engine({
      resolver: storeResolver(store, lockfile ? { allow: await lockedModelsCheck(lockfile) } : {}),
      threads: config.threads,
      contextSize: config.contextSize,
      sequences: config.parallel,
      keepAliveMs: config.keepAliveSeconds < 0 ? -1 : config.keepAliveSeconds * 1000,
      maxQueue: config.maxQueue,
      queueTimeoutMs: config.queueTimeoutSeconds * 1000,
      memoryBudget: config.memoryBudget,
      kvCacheType: config.kvCacheType,
      flashAttention: config.flashAttention,
      gpuLayers: config.gpuLayers,
      engine: config.engine,
      llamaServer: locateLlamaServer(config.llamaServer, [enginesDirectory(config.home)]),
      environment: childEnvironment,
      onEvent: (event) => {
        if (logger) logEngineEvent(logger, event);
        onEngineEvent?.(event);
      },
    });
    const control = await ControlPlane.open({
      home: config.home,
      audit: auditSource(config),
      ...(config.databaseUrl ? { databaseUrl: config.databaseUrl } : {}),
      ...(logOutput ? { logLevel: config.logLevel, logOutput } : { logLevel: "silent" }),
    });
    logger = control.logger;
    control.metrics.setStatusSource(() => engine.status());
    const router = new Router(buildRoutingTable(settings.file, engine, settings.offline), {
      audit: audit ?? control.audit,
    });
    const mcp = McpHub.fromFile(settings.file, settings.offline, {
      // A profile's servers, read from its manifest when a request names it (as the engine reads it to answer).
      profileServers: async (model) => (await store.show(model).catch(() => undefined))?.manifest.profile?.mcp,
      audit: audit ?? control.audit,
      meter: control,
      metrics: control.metrics,
      version: VERSION,
    });
    const gateway = new Gateway(engine, router, control, { host: mcp, maxSteps: settings.file?.mcp_max_steps ?? 8 });
    return new Freehold(config, store, engine, gateway, router, settings, control, mcp);
  }

  /**
   * Re-reads freehold.yaml and swaps the routing table at once (SIGHUP); requests in flight finish on the old one.
   * An invalid file throws and leaves the running table as it was, and so does one without an MCP server a profile
   * in the store attaches (as one without a server a route names). Server settings (host, port) need a restart.
   */
  async reloadRouting(offline?: boolean, actor = "signal:SIGHUP"): Promise<Settings> {
    const target = this.settings.filePath ?? "(no freehold.yaml)";
    let settings: Settings;
    try {
      settings = loadSettings({
        overrides: { home: this.config.home },
        ...(this.settings.filePath ? { configPath: this.settings.filePath } : {}),
        ...(offline !== undefined ? { offline } : {}),
      });
      const problems = await profileMcpProblems(this.store, Object.keys(settings.file?.mcp_servers ?? {}));
      if (problems.length > 0) throw new ConfigFileError(problems.join("\n"), problems);
      this.router.reload(buildRoutingTable(settings.file, this.engine, settings.offline));
      this.mcp.reloadRules(settings.file, settings.offline);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.control.audit.recordSoon({ actor, action: "config.reload-refused", target, detail: { reason } });
      throw error;
    }
    // A configuration change is an administrative action: who, what, when (the file's routes and providers).
    this.control.audit.recordSoon({
      actor,
      action: "config.reload",
      target,
      detail: {
        routes: Object.keys(settings.file?.routes ?? {}),
        providers: Object.keys(settings.file?.providers ?? {}),
        offline: settings.offline,
      },
    });
    return settings;
  }

  /** Streams a chat answer as events (`text-delta`, `usage`, `finish`). */
  chat(options: ChatOptions): AsyncIterable<ChatEvent> {
    const { model, messages, signal, ...rest } = options;
    return this.gateway.generate({ kind: "chat", model, messages, ...split(rest) }, newLibraryContext(), signal);
  }

  /** Streams a raw completion of `prompt`. */
  complete(options: CompleteOptions): AsyncIterable<ChatEvent> {
    const { model, prompt, signal, ...rest } = options;
    const request: CompletionRequest = { kind: "completion", model, prompt, ...split(rest) };
    return this.gateway.generate(request, newLibraryContext(), signal);
  }

  /** The whole chat answer at once. */
  chatText(options: ChatOptions): Promise<FoldedAnswer> {
    return foldChatEvents(this.chat(options));
  }

  completeText(options: CompleteOptions): Promise<FoldedAnswer> {
    return foldChatEvents(this.complete(options));
  }

  /** Normalised embedding vectors, one per input. */
  embed(model: string, input: string | string[]): Promise<EmbeddingResult> {
    return this.gateway.embed({ model, input: typeof input === "string" ? [input] : input }, newLibraryContext());
  }

  /** The HTTP app (OpenAI-compatible API), to mount in your own server via `app.fetch`. */
  httpApp(
    options: { shutdownSignal?: AbortSignal; onRequestStart?: () => void; onRequestEnd?: () => void } = {},
  ): Hono<AppEnv> {
    return createApp({
      gateway: this.gateway,
      health: { health: () => engineHealth(this.engine) },
      loadedModels: { loadedModels: () => this.engine.status().models },
      models: {
        load: (name, keepAliveMs) => this.engine.preload(name, keepAliveMs),
        unload: (name) => this.engine.unloadByName(name),
      },
      catalog: storeCatalog(this.store),
      supply: storeSupply(
        this.store,
        new ModelPuller(this.store, hubClientFor(this.config, this.settings.offline)),
        () => this.mcp.configured(),
      ),
      // Recent decisions from memory; older ones (or from before a restart) from the audit trail.
      decisions: { get: (id) => this.router.decisions.get(id) ?? this.control.audit.decision(id) },
      version: VERSION,
      listenHost: this.config.host,
      allowedHosts: this.config.allowedHosts,
      allowedOrigins: this.config.origins,
      maxBodyBytes: this.config.maxBodyBytes,
      control: httpFacade(this.control),
      consoleSources: this.consoleSources(),
      ...options,
    });
  }

  /** Routes and evaluation runs as the console's admin pages read them. */
  private consoleSources() {
    // Evaluation runs live in the control store: on PostgreSQL every replica lists the runs made from any machine.
    const evals = new EvalStore(this.control.store.evals);
    const summary = async (id: string) => {
      const run = await evals.get(id);
      if (!run) return undefined;
      const results = await evals.results(id);
      return { summary: summarize(run, results), results };
    };
    return {
      routes: () => this.router.describe(),
      recentDecisions: (limit: number) => this.router.decisions.recent(limit),
      evalRuns: async (limit: number) =>
        Promise.all(
          (await evals.list(limit)).map(async (run) => {
            const models = (await summary(run.id))?.summary.models ?? [];
            return {
              id: run.id,
              suite: run.suite,
              created: new Date(run.createdMs).toISOString(),
              finished: run.finishedMs === null ? null : new Date(run.finishedMs).toISOString(),
              answers: run.results,
              models: models.map((model) => ({
                model: model.model,
                baseline: model.baseline,
                answers: model.answers,
                pass_rate: model.passRate,
                interval: model.interval,
                verdict: model.verdict,
              })),
            };
          }),
        ),
      evalReport: async (id: string) => {
        const found = await summary(id);
        return found ? renderHtmlReport(found.summary, found.results) : undefined;
      },
    };
  }

  async close(): Promise<void> {
    this.router.dispose();
    await this.mcp.close();
    await this.engine.close();
    await this.control.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Engine events for the server log. Diagnostics carry what clients are not told (a runner's stderr, llama.cpp's
 * reason with file paths): the admin finds it here, matched to the failing requests by model and time.
 */
function logEngineEvent(logger: Logger, event: EngineEvent): void {
  // Loading a multi-GB model takes seconds to minutes: the log says when it started and how long it took.
  if (event.type === "model-loading") logger.info({ model: event.model }, "model loading");
  else if (event.type === "model-loaded")
    logger.info({ model: event.model, loadMs: event.loadMs, threads: event.threads }, "model loaded");
  else if (event.type === "model-unloaded") logger.info({ model: event.model }, "model unloaded");
  else if (event.type === "runner-diagnostic") {
    const { type: _type, ...fields } = event;
    logger.error(fields, `model runner ${event.kind}`);
  } else if (event.type === "model-load-failed")
    logger.error({ model: event.model, error: event.error }, "model load failed");
  else if (event.type === "runner-crashed")
    logger.warn({ model: event.model, detail: event.detail }, "model runner crashed");
  else if (event.type === "model-settings-adjusted")
    logger.warn({ model: event.model, detail: event.detail }, "model settings adjusted");
}

export function engineHealth(engine: Engine): { ready: boolean; status: string; detail: Record<string, unknown> } {
  const status = engine.status();
  const models = status.models.map((m) => ({ name: m.name, state: m.state, pid: m.pid ?? null, restarts: m.restarts }));
  if (status.loading) return { ready: false, status: "loading", detail: { models } };
  // "No runner can serve": the last start failed and nothing is running. One bad model beside working ones is not that.
  const serving = status.models.some((m) => m.state === "ready");
  if (status.lastStartError && !serving) {
    // /health answers without a key: the reason, without the server's file paths (the log has them).
    return { ready: false, status: "unavailable", detail: { error: withoutPaths(status.lastStartError), models } };
  }
  return { ready: true, status: "ok", detail: { models } };
}

export interface RunningServer {
  url: string;
  freehold: Freehold;
  server: ServerType;
  /** Stops accepting, lets in-flight answers finish within the drain timeout, then stops every runner. */
  shutdown(drainSeconds?: number): Promise<void>;
}

function isLoopbackHost(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Starts the HTTP server. Used by `freehold serve`, and by tests and embedders that want a real socket. Listening
 * beyond loopback with no API keys is refused (anyone on the network could use it) unless `insecureNoAuth`.
 */
export async function startServer(
  freehold: Freehold,
  options: { insecureNoAuth?: boolean } = {},
): Promise<RunningServer> {
  if (!isLoopbackHost(freehold.config.host) && !(await freehold.control.requiresKeys()) && !options.insecureNoAuth)
    throw new FreeholdError(
      `refusing to listen on ${freehold.config.host} with no API keys: anyone who can reach this address could use it. Create a key first (freehold keys create --name NAME --admin), or pass --insecure-no-auth if the network is trusted`,
      { code: "no_keys_on_public_address", status: 400, type: "invalid_request_error" },
    );
  const { serve } = await import("@hono/node-server");
  const shutdownController = new AbortController();
  let inFlight = 0;
  let idle: (() => void) | undefined;
  const app = freehold.httpApp({
    shutdownSignal: shutdownController.signal,
    onRequestStart: () => {
      inFlight++;
    },
    onRequestEnd: () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    },
  });
  const { host, port } = freehold.config;
  const server = await new Promise<ServerType>((resolve, reject) => {
    const instance = serve({ fetch: app.fetch, hostname: host, port, overrideGlobalObjects: false }, () =>
      resolve(instance),
    );
    instance.once("error", reject);
  });
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  let shuttingDown: Promise<void> | undefined;
  return {
    url: `http://${urlHost}:${actualPort}`,
    freehold,
    server,
    shutdown(drainSeconds = freehold.config.drainTimeoutSeconds) {
      shuttingDown ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        if ("closeIdleConnections" in server) server.closeIdleConnections();
        if (inFlight > 0 && drainSeconds > 0) {
          await Promise.race([
            new Promise<void>((resolve) => {
              idle = resolve;
            }),
            new Promise<void>((resolve) => setTimeout(resolve, drainSeconds * 1000).unref()),
          ]);
        }
        shutdownController.abort();
        if ("closeAllConnections" in server) setTimeout(() => server.closeAllConnections(), 1000).unref();
        await Promise.race([closed, new Promise<void>((resolve) => setTimeout(resolve, 2000).unref())]);
        await freehold.close();
      })();
      return shuttingDown;
    },
  };
}

function newLibraryContext() {
  return libraryContext(`lib_${randomUUID().replaceAll("-", "")}`);
}
