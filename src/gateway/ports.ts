import type {
  ChatEvent,
  EmbeddingRequest,
  EmbeddingResult,
  GenerateRequest,
  ModelInfo,
  ModelPort,
  RoutedEvent,
} from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import type { CheckedRequest } from "../core/egress.js";
import type { Admission, MeterTarget, MeterWork, RequestMeter } from "../core/metering.js";
import type { ProfileSource } from "../core/profile.js";
import type { ToolHost } from "../core/toolHost.js";

/**
 * The ports the gateway's pipeline needs, in one place. The pipeline (pipeline.ts) is authorize → apply profile →
 * bound and reserve → policy (each target's exact outgoing body classified) → route and fall back → settle; every
 * stage before the route is a wrapper around the next with the same shape, `Generation`.
 */

export type { CheckedRequest, ProfileSource, RequestMeter };

/** One stage of the pipeline: a generation for a request, as seen from outside that stage. */
export type Generation<E = ChatEvent> = (
  request: GenerateRequest,
  context: RequestContext,
  signal?: AbortSignal,
) => AsyncIterable<E>;

/** Routes requests by model name to local or remote targets under the owner's rules (src/routing's Router). */
export interface RoutingPort {
  /**
   * The policy: decides the route and checks each remote target's exact outgoing body under the key's and route's
   * privacy policy (local-only, redact, block); throws when nothing may answer.
   */
  plan(request: GenerateRequest, context: RequestContext): Promise<CheckedRequest>;
  /** Tries the planned targets with fallback: the model's events, preceded by `served-by` naming the target. */
  serve(plan: CheckedRequest, signal?: AbortSignal): AsyncIterable<RoutedEvent>;
  embed(request: EmbeddingRequest, context: RequestContext, signal?: AbortSignal): Promise<EmbeddingResult>;
  listModels(): Promise<ModelInfo[]>;
  /** Counting follows the same privacy rules as generating: the context carries the key. */
  countTokens(request: GenerateRequest, context: RequestContext): Promise<number>;
  /** Every target a request for this model might be served by (for the worst-case reservation). */
  candidates(model: string): MeterTarget[];
}

export interface GatewayTools {
  /** MCP servers (src/mcp's McpHub). */
  host: ToolHost;
  /** The most model turns one request may take while calling tools (freehold.yaml `mcp_max_steps`). */
  maxSteps: number;
}

/** The engine on this machine, the target of every name no route claims. */
export function localTarget(model: string): MeterTarget {
  return { provider: "local", model, remote: false };
}

/**
 * Routing without a routing table (the library, tests): every name goes to the one local port. It still says which
 * target served, so the pipeline is the same with and without freehold.yaml.
 */
export function directRouting(local: ModelPort): RoutingPort {
  return {
    plan: async (request) => ({ request }),
    async *serve({ request }, signal) {
      const events = local.generate(request, signal);
      yield { type: "served-by", target: localTarget(request.model) };
      yield* events;
    },
    embed: (request, _context, signal) => local.embed(request, signal),
    listModels: () => local.listModels(),
    countTokens: (request) => local.countTokens(request),
    candidates: (model) => [localTarget(model)],
  };
}

/** No profiles anywhere (a port without a model store): requests go as they came. */
export const noProfiles: ProfileSource = { profile: async () => undefined };

/** No keys, quotas or ledger (the library without a control plane): admits everything, records nothing. */
export const unmetered: RequestMeter = {
  async admit(work: MeterWork): Promise<Admission> {
    return { maxTokens: work.maxTokens, settle: async () => {} };
  },
};
