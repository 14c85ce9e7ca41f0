import type { GenerateRequest } from "./chat.js";

/**
 * What a remote provider is about to send, so the owner's privacy policy can look at exactly that (and nothing
 * else) before it leaves: the provider builds the body, the router's policy checks and may redact it, and only then
 * does the provider send it. A field a provider adds later is covered by construction.
 */

/** A path into a JSON value: object keys and array indexes; "*" matches any one key or index. */
export type JsonPathPattern = readonly (string | number)[];

export interface Outgoing {
  /** "generate", "count-tokens" or "embed": for messages and the decision log. */
  operation: "generate" | "count-tokens" | "embed";
  /** Where it goes, relative to the provider's base URL. */
  path: string;
  body: Record<string, unknown>;
  /**
   * Values that are the provider's own protocol, never content (the configured model name, roles, block types, the
   * ids of tool calls): not scanned. Everything else is, object keys included.
   */
  structural: readonly JsonPathPattern[];
  /**
   * Ids the client may choose (tool call ids): scanned for every kind of data except "looks random", since a
   * provider's own ids are random by design.
   */
  identifiers?: readonly JsonPathPattern[];
}

/**
 * A call a provider has prepared. A local one just runs (nothing leaves); a remote one exposes its exact outgoing
 * body and sends only the body it is handed back (the checked, possibly redacted one).
 */
export type PreparedCall<T> =
  | { outgoing: null; run(signal?: AbortSignal): T }
  | { outgoing: Outgoing; send(body: Record<string, unknown>, signal?: AbortSignal): T };

/**
 * A request the policy stage has passed: its route decided and every outgoing body checked (src/routing's
 * RoutedPlan). Only what planned it can serve it; the gateway carries it from the policy stage to the route stage.
 */
export interface CheckedRequest {
  readonly request: GenerateRequest;
}
