import type { RequestContext } from "../core/context.js";

/**
 * What every route and middleware of the HTTP app shares: the request's variables. Its own module (types only), so
 * route files and the app that assembles them never import each other.
 */

/**
 * Who may call a route, declared where the route is made (guard.ts):
 * - `public`: anyone, even once keys exist (liveness probes, Ollama clients' "is it running" checks); no key is read.
 * - `key`: a valid key once keys exist (open on a keyless loopback server). Model scope is checked deeper, by the
 *   gateway (authorizeModel), for the model the request names.
 * - `admin`: an admin key once keys exist (open on a keyless loopback server, like the CLI on the same machine).
 */
export type Access = "public" | "key" | "admin";

export interface AccessDeclaration {
  access: Access;
  /**
   * Whether the HTTP layer records a successful non-GET call in the audit trail (default: yes for admin routes).
   * False where the handler records its own, finer entry (key.create, key.revoke).
   */
  audit: boolean;
}

export type AppEnv = {
  Variables: {
    /** Parses the JSON body once; malformed JSON is a 400. */
    json: () => Promise<unknown>;
    /** Aborted when the client goes away or the server stops waiting. */
    signal: AbortSignal;
    /** Who is asking, through which API (the control plane adds the caller's key). */
    context: RequestContext;
    /** Who may call the matched route, once the access middleware authorized the request (guard.ts). */
    access: AccessDeclaration;
  };
};
