import type {
  ChatEvent,
  EmbeddingRequest,
  EmbeddingResult,
  GenerateRequest,
  ModelInfo,
  ModelPort,
} from "../core/chat.js";
import type { RequestContext } from "../core/context.js";

/**
 * The use case every API surface calls: (later) authorize, classify, apply policy, pick a target, meter.
 * Today it routes everything to the local engine; policies will wrap the port here, not live in handlers.
 */
export class Gateway {
  constructor(private readonly local: ModelPort) {}

  generate(request: GenerateRequest, _context: RequestContext, signal?: AbortSignal): AsyncIterable<ChatEvent> {
    return this.local.generate(request, signal);
  }

  embed(request: EmbeddingRequest, _context: RequestContext, signal?: AbortSignal): Promise<EmbeddingResult> {
    return this.local.embed(request, signal);
  }

  listModels(_context?: RequestContext): Promise<ModelInfo[]> {
    return this.local.listModels();
  }

  countTokens(request: GenerateRequest, _context?: RequestContext): Promise<number> {
    return this.local.countTokens(request);
  }
}
