import type { RequestContext } from "./context.js";

/**
 * Metering, as the gateway sees it: before a request runs it is admitted (its worst case reserved against the
 * caller's limits), and when it ends it is settled (the reservation replaced by what it really used, and one ledger
 * row written). The control plane implements it; the gateway calls it around every port.
 */

/** Where a request is answered. */
export interface MeterTarget {
  /** "local" for the engine; a provider's name for a remote one. */
  provider: string;
  /** The model name as the target knows it (prices are looked up by it). */
  model: string;
  /** Remote requests cost money and count against a key's USD budget. */
  remote: boolean;
}

export interface MeterWork {
  /** "mcp-call": one MCP tool call (no tokens; it counts as a request against per-minute limits). */
  kind: "generate" | "embed" | "rerank" | "count-tokens" | "mcp-call";
  /** An upper bound on the prompt's tokens (from its bytes). */
  promptTokenBound: number;
  /** The request's own max_tokens, if it set one. */
  maxTokens: number | undefined;
  /** The request as received, kept only for keys that store content. */
  content?: unknown;
  /**
   * Every target that might answer (a route's fallbacks included); the worst-case cost reserved is the costliest
   * of them. Absent: only the admission target.
   */
  candidates?: MeterTarget[];
  /** A fixed price for the work (an MCP server's `price_per_call_usd`), reserved against the key's budget. */
  priceUsd?: number;
}

export interface MeterOutcome {
  promptTokens: number;
  completionTokens: number;
  cachedTokens: number;
  timeToFirstTokenMs: number | null;
  /** HTTP-like: 200 answered, 499 cancelled by the client, otherwise the error's status. */
  status: number;
  errorCode?: string;
  /** The answer's text, kept only for keys that store content. */
  responseText?: string;
  /** Where it was really answered, when a router chose another target than the one admitted. */
  servedBy?: MeterTarget;
  /** What the work cost when it has a fixed price (MeterWork.priceUsd): charged instead of a token price. */
  costUsd?: number;
  /** Drafted tokens accepted and rejected (speculative decoding), for the metrics. */
  draftTokens?: { accepted: number; rejected: number };
}

export interface Admission {
  /**
   * The max_tokens the port must be asked for: the request's own, or (when it set none and the key has token
   * limits) the ceiling that was reserved, so the worst case holds.
   */
  maxTokens: number | undefined;
  /**
   * Ends the reservation with what really happened and writes the ledger row; resolves once it is committed. Only
   * the first call counts (later calls return the first one's promise).
   */
  settle(outcome: MeterOutcome): Promise<void>;
}

export interface RequestMeter {
  /** Whether this caller's limits count tokens, so the prompt's exact bound is worth tokenizing for. */
  boundsTokens?(context: RequestContext): Promise<boolean>;
  /** Reserves the worst case against the caller's limits; throws RateLimitError (429) when a limit is reached. */
  admit(work: MeterWork, context: RequestContext, target: MeterTarget): Promise<Admission>;
}
