import { FreeholdError } from "../core/errors.js";

/**
 * The hub (or the network on the way to it) did not give what was asked for: not found, refused, unreachable, or
 * bytes that are not what the listing promised. `retryable` says whether trying again later can help.
 */
export class HubError extends FreeholdError {
  constructor(message: string, code = "hub_error", status = 502, retryable = false) {
    super(message, {
      code,
      status,
      type: status === 404 ? "not_found_error" : status < 500 ? "invalid_request_error" : "server_error",
      retryable,
    });
  }
}
