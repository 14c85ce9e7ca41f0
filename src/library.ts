/**
 * freehold as a library (the embeddable API): the same store, engine, gateway and HTTP app the server uses, in your
 * process. The parts are wired in src/main.ts; this file is what a caller holds.
 */
import { randomUUID } from "node:crypto";
import type { Hono } from "hono";
import type { Config } from "./config/config.js";
import { ConfigFileError, loadSettings, type Settings } from "./config/fileConfig.js";
import type { ControlPlane } from "./control/controlPlane.js";
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
import { libraryContext } from "./core/context.js";
import type { ImageFetcher } from "./core/imageFetch.js";
import type { Engine } from "./engine/engine.js";
import type { Gateway } from "./gateway/gateway.js";
import type { AppEnv } from "./http/appEnv.js";
import { composeFreehold, composeHttpApp, type FreeholdParts, type OpenOptions } from "./main.js";

export type { OpenOptions };

import type { McpHub } from "./mcp/hub.js";
import { profileMcpProblems } from "./modelSupply.js";
import type { Router } from "./routing/router.js";
import { buildRoutingTable } from "./routing/table.js";
import type { ModelStore } from "./store/store.js";

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
  readonly config: Config;
  readonly store: ModelStore;
  readonly engine: Engine;
  readonly gateway: Gateway;
  /** Routes, providers and privacy policy from freehold.yaml (with none, everything stays local). */
  readonly router: Router;
  readonly settings: Settings;
  /** Keys, limits, the usage ledger, audit trail and metrics ($FREEHOLD_HOME/freehold.db). */
  readonly control: ControlPlane;
  /** MCP servers from freehold.yaml (`mcp_servers`), started on first use (docs/mcp.md). */
  readonly mcp: McpHub;
  /** Fetches image URLs in requests (FREEHOLD_IMAGE_FETCH, or OpenOptions.imageFetcher); absent = refused. */
  readonly imageFetcher?: ImageFetcher;

  private constructor(parts: FreeholdParts) {
    this.config = parts.config;
    this.store = parts.store;
    this.engine = parts.engine;
    this.gateway = parts.gateway;
    this.router = parts.router;
    this.settings = parts.settings;
    this.control = parts.control;
    this.mcp = parts.mcp;
    if (parts.imageFetcher) this.imageFetcher = parts.imageFetcher;
  }

  static async open(options: OpenOptions = {}): Promise<Freehold> {
    return new Freehold(await composeFreehold(options));
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
    return composeHttpApp(this, options);
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

function newLibraryContext() {
  return libraryContext(`lib_${randomUUID().replaceAll("-", "")}`);
}
