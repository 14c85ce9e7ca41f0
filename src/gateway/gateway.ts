import type {
  ChatEvent,
  EmbeddingRequest,
  EmbeddingResult,
  GenerateRequest,
  ModelInfo,
  ModelPort,
} from "../core/chat.js";
import type { RequestContext } from "../core/context.js";

/** Routes requests by model name to local or remote targets under the owner's rules (src/routing's Router). */
export interface RoutingPort {
  generate(request: GenerateRequest, context: RequestContext, signal?: AbortSignal): AsyncIterable<ChatEvent>;
  embed(request: EmbeddingRequest, context: RequestContext, signal?: AbortSignal): Promise<EmbeddingResult>;
  listModels(): Promise<ModelInfo[]>;
  countTokens(request: GenerateRequest): Promise<number>;
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
  ) {}

  generate(request: GenerateRequest, context: RequestContext, signal?: AbortSignal): AsyncIterable<ChatEvent> {
    if (this.router) return this.router.generate(request, context, signal);
    return this.local.generate(request, signal);
  }

  embed(request: EmbeddingRequest, context: RequestContext, signal?: AbortSignal): Promise<EmbeddingResult> {
    if (this.router) return this.router.embed(request, context, signal);
    return this.local.embed(request, signal);
  }

  listModels(_context?: RequestContext): Promise<ModelInfo[]> {
    return this.router ? this.router.listModels() : this.local.listModels();
  }

  countTokens(request: GenerateRequest, _context?: RequestContext): Promise<number> {
    return this.router ? this.router.countTokens(request) : this.local.countTokens(request);
  }
}
