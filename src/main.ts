/**
 * The composition root: the one place that wires concrete parts (store, engine, gateway, HTTP) together. The library
 * facade (src/library.ts), the server and its drain (src/server.ts) and the store adapters (src/storeAdapters.ts)
 * hold what callers use; this file only builds the parts and hands them over.
 */
import type { Hono } from "hono";
import { type Config, type ConfigOverrides, childEnvironment } from "./config/config.js";
import { ConfigFileError, loadSettings, type Settings } from "./config/fileConfig.js";
import { auditSource, ControlPlane } from "./control/controlPlane.js";
import { httpFacade } from "./control/httpFacade.js";
import type { Logger } from "./control/logger.js";
import type { AuditSink } from "./core/context.js";
import { treatAsPrivateDirectory, withoutPaths } from "./core/errors.js";
import type { ImageFetcher } from "./core/imageFetch.js";
import { Engine, type EngineEvent } from "./engine/engine.js";
import { enginesDirectory, locateLlamaServer } from "./engine/engines.js";
import { renderHtmlReport } from "./eval/html.js";
import { EvalStore } from "./eval/store.js";
import { summarize } from "./eval/summary.js";
import { Gateway } from "./gateway/gateway.js";
import { createApp } from "./http/app.js";
import type { AppEnv } from "./http/appEnv.js";
import { McpHub } from "./mcp/hub.js";
import { hubClientFor, lockedModelsCheck, ModelPuller, profileMcpProblems, storeSupply } from "./modelSupply.js";
import { HttpImageFetcher, parseHostRules } from "./providers/imageFetch.js";
import { Router } from "./routing/router.js";
import { buildRoutingTable } from "./routing/table.js";
import { ModelStore } from "./store/store.js";
import { storeCatalog, storeResolver } from "./storeAdapters.js";
import { VERSION } from "./version.js";

/** What `Freehold.open` takes besides the settings: hooks and sinks of the embedding program. */
export interface OpenOptions extends ConfigOverrides {
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
  /**
   * Fetches images clients name by URL, instead of the one FREEHOLD_IMAGE_FETCH describes (an embedding program's
   * own image store; tests). Without either, image URLs are refused.
   */
  imageFetcher?: ImageFetcher;
}

/** The wired parts a Freehold holds (src/library.ts). */
export interface FreeholdParts {
  config: Config;
  store: ModelStore;
  engine: Engine;
  gateway: Gateway;
  router: Router;
  settings: Settings;
  control: ControlPlane;
  mcp: McpHub;
  /** Image URLs (FREEHOLD_IMAGE_FETCH); absent = refused. */
  imageFetcher?: ImageFetcher;
}

/** Reads the settings and builds every part: store, engine, control plane, router, MCP hub and gateway. */
export async function composeFreehold(overrides: OpenOptions = {}): Promise<FreeholdParts> {
  const { onEngineEvent, configPath, offline, audit, lockfile, logOutput, imageFetcher, ...configOverrides } =
    overrides;
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
  // The engine's store is where profiles live: the gateway applies the one a request names before metering and
  // policy, the router a route's local target's own.
  const router = new Router(buildRoutingTable(settings.file, engine, settings.offline), {
    audit: audit ?? control.audit,
    profiles: engine,
  });
  const mcp = McpHub.fromFile(settings.file, settings.offline, {
    // A profile's servers, read from its manifest when a request names it (as the engine reads it to answer).
    profileServers: async (model) => (await store.show(model).catch(() => undefined))?.manifest.profile?.mcp,
    audit: audit ?? control.audit,
    meter: control,
    metrics: control.metrics,
    version: VERSION,
  });
  const tools = { host: mcp, maxSteps: settings.file?.mcp_max_steps ?? 8 };
  const gateway = new Gateway(engine, router, control, tools, engine);
  const images = imageFetcher ?? imageFetcherFor(config, settings.offline, control.logger);
  return {
    config,
    store,
    engine,
    gateway,
    router,
    settings,
    control,
    mcp,
    ...(images ? { imageFetcher: images } : {}),
  };
}

/** The HTTP app over the wired parts (`Freehold.httpApp`). */
export function composeHttpApp(
  parts: FreeholdParts,
  options: { shutdownSignal?: AbortSignal; onRequestStart?: () => void; onRequestEnd?: () => void } = {},
): Hono<AppEnv> {
  return createApp({
    gateway: parts.gateway,
    health: { health: () => engineHealth(parts.engine) },
    loadedModels: { loadedModels: () => parts.engine.status().models },
    models: {
      load: (name, keepAliveMs) => parts.engine.preload(name, keepAliveMs),
      unload: (name) => parts.engine.unloadByName(name),
    },
    catalog: storeCatalog(parts.store),
    supply: storeSupply(
      parts.store,
      new ModelPuller(parts.store, hubClientFor(parts.config, parts.settings.offline)),
      () => parts.mcp.configured(),
    ),
    // Recent decisions from memory; older ones (or from before a restart) from the audit trail.
    decisions: { get: (id) => parts.router.decisions.get(id) ?? parts.control.audit.decision(id) },
    version: VERSION,
    listenHost: parts.config.host,
    allowedHosts: parts.config.allowedHosts,
    allowedOrigins: parts.config.origins,
    maxBodyBytes: parts.config.maxBodyBytes,
    control: httpFacade(parts.control),
    consoleSources: consoleSources(parts),
    ...(parts.imageFetcher ? { imageFetcher: parts.imageFetcher } : {}),
    ...options,
  });
}

/**
 * The image fetcher FREEHOLD_IMAGE_FETCH asks for: none without hosts or offline (every image URL is then a 400).
 * One log line per fetch names the host and size, never the URL (its path and query may carry secrets).
 */
function imageFetcherFor(config: Config, offline: boolean, logger: Logger): ImageFetcher | undefined {
  if (offline || config.imageFetch.length === 0) return undefined;
  return new HttpImageFetcher({
    hosts: parseHostRules(config.imageFetch),
    timeoutMs: config.imageFetchTimeoutSeconds * 1000,
    onFetch: (record) =>
      record.error
        ? logger.warn({ host: record.host, ms: record.ms, error: record.error }, "image fetch refused or failed")
        : logger.info({ host: record.host, bytes: record.bytes, ms: record.ms }, "image fetched"),
  });
}

/** Routes and evaluation runs as the console's admin pages read them. */
function consoleSources(parts: Pick<FreeholdParts, "router" | "control">) {
  // Evaluation runs live in the control store: on PostgreSQL every replica lists the runs made from any machine.
  const evals = new EvalStore(parts.control.store.evals);
  const summary = async (id: string) => {
    const run = await evals.get(id);
    if (!run) return undefined;
    const results = await evals.results(id);
    return { summary: summarize(run, results), results };
  };
  return {
    routes: () => parts.router.describe(),
    recentDecisions: (limit: number) => parts.router.decisions.recent(limit),
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
