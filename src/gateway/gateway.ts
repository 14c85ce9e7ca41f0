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
import type { MeterTarget } from "../core/metering.js";
import { authorizeModel, modelAllowed } from "./authorize.js";
import { meteredCount, meteredEmbedding } from "./metering.js";
import { generationPipeline } from "./pipeline.js";
import {
  directRouting,
  type GatewayTools,
  type Generation,
  localTarget,
  noProfiles,
  type ProfileSource,
  type RequestMeter,
  type RoutingPort,
  unmetered,
} from "./ports.js";
import { profiledRequest } from "./profile.js";
import { type McpToolset, runToolLoop, type ToolLoopEvent, type ToolLoopOptions } from "./toolLoop.js";

export type { GatewayTools, RoutingPort } from "./ports.js";

/**
 * The use case every API surface calls. A generation goes through one pipeline (pipeline.ts): authorize → apply
 * profile → bound and reserve → policy → route and fall back → settle; MCP tool loops run each model turn through
 * the same pipeline. Embeddings, reranking and counting are authorized and metered around one call.
 */
export class Gateway {
  private readonly routing: RoutingPort;
  private readonly meter: RequestMeter;
  private readonly generation: Generation;

  /** Without a router (no freehold.yaml routes), everything goes to the local engine; without a meter, unmetered. */
  constructor(
    private readonly local: ModelPort,
    router?: RoutingPort,
    /** Keys' scopes and limits, and the ledger (src/control). */
    meter?: RequestMeter,
    /** Server-side tools (MCP); absent = none. */
    readonly tools?: GatewayTools,
    /** Model profiles (the store): applied before metering and routing. */
    private readonly profiles: ProfileSource = noProfiles,
  ) {
    this.routing = router ?? directRouting(local);
    this.meter = meter ?? unmetered;
    this.generation = generationPipeline({ local, routing: this.routing, meter: this.meter, profiles });
  }

  /**
   * A request for a route with MCP servers attached (`mcp:` in freehold.yaml) runs its tools here, so every API
   * gets them without knowing MCP; the client's own tools still come back to the client.
   */
  generate(request: GenerateRequest, context?: RequestContext, signal?: AbortSignal): AsyncIterable<ChatEvent> {
    // A caller without a context (in-process use of the library's gateway) is the library, as for countTokens.
    const caller = context ?? newLibraryContext("gen");
    if (request.kind === "chat" && this.tools?.host.mayAttach(request.model))
      return this.generateAttached(request, caller, signal);
    return this.generateOnce(request, caller, signal);
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
    return this.generation(request, context, signal);
  }

  /** Embeddings go to a route's first local target (the router's rule), so that is the target metered. */
  embed(request: EmbeddingRequest, context: RequestContext, signal?: AbortSignal): Promise<EmbeddingResult> {
    authorizeModel(context, request.model);
    const target = this.routing.candidates(request.model).find((candidate) => !candidate.remote);
    const run = () => this.routing.embed(request, context, signal);
    return meteredEmbedding(this.meter, request, context, target ?? localTarget(request.model), run);
  }

  /**
   * Reranking runs on local models only (issue 14: a rerank to a remote provider is out of scope). A route name
   * resolves to its first local target, like embeddings; metered and keyed like embeddings (ledger kind "rerank").
   */
  rerank(request: RerankRequest, context: RequestContext, signal?: AbortSignal): Promise<RerankResult> {
    authorizeModel(context, request.model);
    const target = this.rerankTarget(request.model);
    const rerank = this.local.rerank?.bind(this.local);
    const run = () => {
      if (!rerank) throw new InvalidRequestError("this server's models cannot rerank", "model", "rerank_unsupported");
      return rerank({ ...request, model: target.model }, signal);
    };
    const texts = { model: request.model, input: [request.query, ...request.documents] };
    return meteredEmbedding(this.meter, texts, context, target, run, "rerank");
  }

  private rerankTarget(model: string): MeterTarget {
    // The engine's own models: other providers (even on this machine) have no rerank call here.
    const local = this.routing.candidates(model).find((candidate) => candidate.provider === "local");
    if (!local)
      throw new InvalidRequestError(
        `route ${model} has no target on the local engine; reranking runs on the engine's own models only`,
        "model",
        "route_no_local_target",
      );
    return local;
  }

  async listModels(context?: RequestContext): Promise<ModelInfo[]> {
    const models = await this.routing.listModels();
    return models.filter((model) => modelAllowed(context, model.name));
  }

  /** A client's own counting request (count_tokens): metered and rate-limited like any model request. */
  async countTokensRequest(request: GenerateRequest, context: RequestContext): Promise<number> {
    authorizeModel(context, request.model);
    const count = async () => this.routing.countTokens(await profiledRequest(this.profiles, request), context);
    return meteredCount(this.meter, context, localTarget(request.model), count);
  }

  /** Counts a prompt, profile applied, for a request being answered (its ledger row is the answer's own). */
  async countTokens(request: GenerateRequest, context?: RequestContext): Promise<number> {
    if (context) authorizeModel(context, request.model);
    const counting = context ?? newLibraryContext("count");
    return this.routing.countTokens(await profiledRequest(this.profiles, request), counting);
  }
}

function newLibraryContext(prefix: string): RequestContext {
  return libraryContext(`${prefix}_${randomUUID().replaceAll("-", "")}`);
}

/** The model's events of a tool loop, for APIs that have no items for MCP calls (they happened server-side). */
async function* chatEventsOnly(events: AsyncIterable<ToolLoopEvent>): AsyncGenerator<ChatEvent> {
  for await (const event of events) {
    if (event.type.startsWith("mcp-")) continue;
    yield event as ChatEvent;
  }
}
