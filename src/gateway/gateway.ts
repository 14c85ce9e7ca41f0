import { randomUUID } from "node:crypto";
import type {
  ChatEvent,
  ChatRequest,
  EmbeddingRequest,
  EmbeddingResult,
  GenerateRequest,
  ModelInfo,
  ModelPort,
  RerankRequest,
  RerankResult,
} from "../core/chat.js";
import { libraryContext, type RequestContext } from "../core/context.js";
import { InvalidRequestError } from "../core/errors.js";
import type { MeterTarget, RequestMeter } from "../core/metering.js";
import type { ToolHost } from "../core/toolHost.js";
import {
  authorizeModel,
  localTarget,
  meteredCount,
  meteredEmbedding,
  meteredGeneration,
  modelAllowed,
  promptTokenBound,
  remotePromptBound,
} from "./metering.js";
import { type McpToolset, runToolLoop, type ToolLoopEvent, type ToolLoopOptions } from "./toolLoop.js";

export interface GatewayTools {
  /** MCP servers (src/mcp's McpHub). */
  host: ToolHost;
  /** The most model turns one request may take while calling tools (freehold.yaml `mcp_max_steps`). */
  maxSteps: number;
}

/** Routes requests by model name to local or remote targets under the owner's rules (src/routing's Router). */
export interface RoutingPort {
  generate(request: GenerateRequest, context: RequestContext, signal?: AbortSignal): AsyncIterable<ChatEvent>;
  embed(request: EmbeddingRequest, context: RequestContext, signal?: AbortSignal): Promise<EmbeddingResult>;
  listModels(): Promise<ModelInfo[]>;
  /** Counting follows the same privacy rules as generating: the context carries the key. */
  countTokens(request: GenerateRequest, context: RequestContext): Promise<number>;
  /** Every target a request for this model might be served by (for the worst-case reservation). */
  candidates(model: string): MeterTarget[];
}

/**
 * The use case every API surface calls: (later) authorize, classify, apply policy, pick a target, meter.
 * Today it routes everything to the local engine; policies will wrap the port here, not live in handlers.
 */
export class Gateway {
  /** Without a router (no freehold.yaml routes), everything goes to the local engine. */
  constructor(
    private readonly local: ModelPort,
    private readonly router?: RoutingPort,
    /** Keys' scopes and limits, and the ledger (src/control); absent = unmetered. */
    private readonly meter?: RequestMeter,
    /** Server-side tools (MCP); absent = none. */
    readonly tools?: GatewayTools,
  ) {}

  /**
   * A request for a route with MCP servers attached (`mcp:` in freehold.yaml) runs its tools here, so every API
   * gets them without knowing MCP; the client's own tools still come back to the client.
   */
  generate(request: GenerateRequest, context: RequestContext, signal?: AbortSignal): AsyncIterable<ChatEvent> {
    if (request.kind === "chat" && this.tools?.host.mayAttach(request.model))
      return this.generateAttached(request, context, signal);
    return this.generateOnce(request, context, signal);
  }

  /** A route's or profile's servers, looked up first (a profile's are in the store); none = a plain generation. */
  private async *generateAttached(
    request: ChatRequest,
    context: RequestContext,
    signal?: AbortSignal,
  ): AsyncGenerator<ChatEvent> {
    const servers = await this.tools!.host.attached(request.model);
    if (servers.length === 0) return yield* this.generateOnce(request, context, signal);
    yield* chatEventsOnly(this.runTools(request, context, { toolsets: [] }, servers, signal));
  }

  /**
   * Generation with MCP tools: the request's own toolsets (Responses' mcp tools) plus the route's attached servers.
   * Yields the model's events and the loop's mcp-* events.
   */
  async *generateWithTools(
    request: ChatRequest,
    context: RequestContext,
    options: Omit<ToolLoopOptions, "maxSteps"> & { maxSteps?: number },
    signal?: AbortSignal,
  ): AsyncGenerator<ToolLoopEvent> {
    if (!this.tools)
      throw new InvalidRequestError("MCP tools are not available here: no MCP servers are configured", "tools");
    const attached = await this.tools.host.attached(request.model);
    // Nothing to offer (a profile that attaches none, a request with no MCP tools): a plain generation.
    if (attached.length === 0 && options.toolsets.length === 0 && !options.approved?.length)
      return yield* this.generateOnce(request, context, signal);
    yield* this.runTools(request, context, options, attached, signal);
  }

  private runTools(
    request: ChatRequest,
    context: RequestContext,
    options: Omit<ToolLoopOptions, "maxSteps"> & { maxSteps?: number },
    attachedServers: string[],
    signal?: AbortSignal,
  ): AsyncIterable<ToolLoopEvent> {
    const tools = this.tools!;
    const named = new Set(options.toolsets.map((toolset) => toolset.server));
    const attached: McpToolset[] = attachedServers
      .filter((server) => !named.has(server))
      .map((server) => ({ server, requiresApproval: () => false }));
    return runToolLoop(
      (turn, turnContext) => this.generateOnce(turn, turnContext, signal),
      tools.host,
      request,
      context,
      { ...options, toolsets: [...options.toolsets, ...attached], maxSteps: options.maxSteps ?? tools.maxSteps },
      signal,
    );
  }

  private generateOnce(
    request: GenerateRequest,
    context: RequestContext,
    signal?: AbortSignal,
  ): AsyncIterable<ChatEvent> {
    const run = (admitted: GenerateRequest, runSignal?: AbortSignal) =>
      this.router ? this.router.generate(admitted, context, runSignal) : this.local.generate(admitted, runSignal);
    const meter = this.meter;
    if (!meter) return run(request, signal);
    const candidates = this.candidates(request);
    return meteredGeneration(meter, request, context, localTarget(request.model), run, {
      candidates,
      signal,
      // Tokenizing costs a round trip to the runner: only keys with token limits need the exact bound.
      ...(meter.boundsTokens
        ? {
            promptBound: async (admitted: GenerateRequest) =>
              (await meter.boundsTokens!(context))
                ? this.promptBound(admitted, candidates)
                : promptTokenBound(admitted),
          }
        : {}),
    });
  }

  /**
   * A true upper bound on the prompt's tokens over every target that may answer: local models tokenize it (chat
   * template and tools included, as the engine will), remote ones get the byte bound (remotePromptBound).
   */
  private async promptBound(request: GenerateRequest, candidates: MeterTarget[] | undefined): Promise<number> {
    const targets = candidates ?? [localTarget(request.model)];
    const localModels = [...new Set(targets.filter((target) => !target.remote).map((target) => target.model))];
    const counts = await Promise.all(
      localModels.map((model) =>
        // A model that cannot be counted cannot run either: the byte bound stands in until generation fails.
        this.local.countTokens({ ...request, model }).catch(() => promptTokenBound(request)),
      ),
    );
    const remote = targets.some((target) => target.remote) ? [remotePromptBound(request)] : [];
    return Math.max(0, ...counts, ...remote);
  }

  private candidates(request: { model: string }): MeterTarget[] | undefined {
    return this.router?.candidates(request.model);
  }

  embed(request: EmbeddingRequest, context: RequestContext, signal?: AbortSignal): Promise<EmbeddingResult> {
    const run = () => (this.router ? this.router.embed(request, context, signal) : this.local.embed(request, signal));
    if (this.meter) return meteredEmbedding(this.meter, request, context, localTarget(request.model), run);
    return run();
  }

  /**
   * Reranking runs on local models only (issue 14: a rerank to a remote provider is out of scope). A route name
   * resolves to its first local target, like embeddings; metered and keyed like embeddings (ledger kind "rerank").
   */
  rerank(request: RerankRequest, context: RequestContext, signal?: AbortSignal): Promise<RerankResult> {
    const target = this.rerankTarget(request.model);
    const rerank = this.local.rerank?.bind(this.local);
    const run = () => {
      if (!rerank) throw new InvalidRequestError("this server's models cannot rerank", "model", "rerank_unsupported");
      return rerank({ ...request, model: target.model }, signal);
    };
    const texts = { model: request.model, input: [request.query, ...request.documents] };
    if (this.meter) return meteredEmbedding(this.meter, texts, context, target, run, "rerank");
    authorizeModel(context, request.model);
    return run();
  }

  private rerankTarget(model: string): MeterTarget {
    const candidates = this.router?.candidates(model) ?? [localTarget(model)];
    // The engine's own models: other providers (even on this machine) have no rerank call here.
    const local = candidates.find((candidate) => candidate.provider === "local");
    if (!local)
      throw new InvalidRequestError(
        `route ${model} has no target on the local engine; reranking runs on the engine's own models only`,
        "model",
        "route_no_local_target",
      );
    return local;
  }

  async listModels(context?: RequestContext): Promise<ModelInfo[]> {
    const models = await (this.router ? this.router.listModels() : this.local.listModels());
    return models.filter((model) => modelAllowed(context, model.name));
  }

  /** A client's own counting request (count_tokens): metered and rate-limited like any model request. */
  countTokensRequest(request: GenerateRequest, context: RequestContext): Promise<number> {
    const count = () => this.countTokens(request, context);
    return this.meter ? meteredCount(this.meter, request, context, localTarget(request.model), count) : count();
  }

  /** Counts a prompt for a request being answered (its ledger row is the answer's own). */
  countTokens(request: GenerateRequest, context?: RequestContext): Promise<number> {
    if (context) authorizeModel(context, request.model);
    if (!this.router) return this.local.countTokens(request);
    return this.router.countTokens(request, context ?? libraryContext(`count_${randomUUID().replaceAll("-", "")}`));
  }
}

/** The model's events of a tool loop, for APIs that have no items for MCP calls (they happened server-side). */
async function* chatEventsOnly(events: AsyncIterable<ToolLoopEvent>): AsyncGenerator<ChatEvent> {
  for await (const event of events) {
    if (event.type.startsWith("mcp-")) continue;
    yield event as ChatEvent;
  }
}
