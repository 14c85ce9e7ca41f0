/**
 * Who is asking and through which door: built once per request by the HTTP layer (or the library), passed to
 * the gateway with every call, so authorization, policy, routing and metering read one record.
 */

/** The API surface a request came in through; decides error shapes and what "the same request" means on replay. */
export type ApiSurface = "openai" | "ollama" | "anthropic" | "freehold" | "library" | "mcp";

/** The caller's key, as the control plane resolved it (never the secret). Absent on an open loopback server. */
export interface CallerKey {
  id: string;
  name: string;
  admin: boolean;
  /** Models this key may use; null = any. */
  models: readonly string[] | null;
  /** Requests on this key never leave the machine. */
  localOnly: boolean;
  /** Keep request and response content for this key (evaluation replay). */
  storeContent: boolean;
}

export interface RequestContext {
  /** Unique per request; echoed to the client as `x-request-id`. */
  requestId: string;
  api: ApiSurface;
  /** The HTTP path (or "library"), for the ledger and the audit trail. */
  route: string;
  key?: CallerKey;
}

/** One entry of the audit trail: who did what, to what, and why. */
export interface AuditEvent {
  actor: string;
  action: string;
  target?: string;
  requestId?: string;
  detail?: Record<string, unknown>;
}

/** Where administrative actions and routing decisions are recorded (the control plane implements it). */
export interface AuditSink {
  /** Resolves once written (a store that writes synchronously may return nothing). */
  record(event: AuditEvent): void | Promise<void>;
  /** Records soon, batched with others, off the caller's path (per-request entries); record() when absent. */
  recordSoon?(event: AuditEvent): void;
}

export function libraryContext(requestId: string): RequestContext {
  return { requestId, api: "library", route: "library" };
}
