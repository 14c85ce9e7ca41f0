import { randomUUID } from "node:crypto";
import type {
  ChatEvent,
  EmbeddingRequest,
  EmbeddingResult,
  GenerateRequest,
  ModelInfo,
  ModelPort,
} from "../core/chat.js";
import { libraryContext, type RequestContext } from "../core/context.js";
import type { MeterTarget, RequestMeter } from "../core/metering.js";
import { authorizeModel, localTarget, meteredEmbedding, meteredGeneration, modelAllowed } from "./metering.js";

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
  ) {}

  generate(request: GenerateRequest, context: RequestContext, signal?: AbortSignal): AsyncIterable<ChatEvent> {
    const run = (admitted: GenerateRequest) =>
      this.router ? this.router.generate(admitted, context, signal) : this.local.generate(admitted, signal);
    if (this.meter)
      return meteredGeneration(this.meter, request, context, localTarget(request.model), run, this.candidates(request));
    return run(request);
  }

  private candidates(request: { model: string }): MeterTarget[] | undefined {
    return this.router?.candidates(request.model);
  }

  embed(request: EmbeddingRequest, context: RequestContext, signal?: AbortSignal): Promise<EmbeddingResult> {
    const run = () => (this.router ? this.router.embed(request, context, signal) : this.local.embed(request, signal));
    if (this.meter) return meteredEmbedding(this.meter, request, context, localTarget(request.model), run);
    return run();
  }

  async listModels(context?: RequestContext): Promise<ModelInfo[]> {
    const models = await (this.router ? this.router.listModels() : this.local.listModels());
    return models.filter((model) => modelAllowed(context, model.name));
  }

  countTokens(request: GenerateRequest, context?: RequestContext): Promise<number> {
    if (context) authorizeModel(context, request.model);
    if (!this.router) return this.local.countTokens(request);
    return this.router.countTokens(request, context ?? libraryContext(`count_${randomUUID().replaceAll("-", "")}`));
  }
}
