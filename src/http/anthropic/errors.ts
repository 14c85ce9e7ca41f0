import { isFreeholdError, withoutPaths } from "../../core/errors.js";
import { wantsAnthropicShape } from "./models.js";

/** Anthropic's error types (docs: "HTTP errors"); the HTTP status decides which one an error is. */
export type AnthropicErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "billing_error"
  | "permission_error"
  | "not_found_error"
  | "request_too_large"
  | "rate_limit_error"
  | "api_error"
  | "timeout_error"
  | "overloaded_error";

export interface AnthropicErrorBody {
  type: "error";
  error: { type: AnthropicErrorType; message: string };
}

const typeByStatus: Record<number, AnthropicErrorType> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  503: "overloaded_error",
  504: "timeout_error",
  529: "overloaded_error",
};

/** Anthropic's error body: {"type": "error", "error": {"type", "message"}}. The one mapper for this API. */
export function anthropicErrorBody(error: unknown): { status: number; body: AnthropicErrorBody } {
  if (isFreeholdError(error)) {
    const type = typeByStatus[error.status] ?? (error.status >= 500 ? "api_error" : "invalid_request_error");
    return {
      status: error.status,
      body: { type: "error", error: { type, message: withoutPaths(error.message, error.status >= 500) } },
    };
  }
  return { status: 500, body: { type: "error", error: { type: "api_error", message: "internal server error" } } };
}

/** Anthropic's requests: its Messages API, and the models path it shares with OpenAI when its header says so. */
export const anthropicErrors = {
  claims: (path: string, headers: Headers) =>
    path.startsWith("/v1/messages") ||
    ((path === "/v1/models" || path.startsWith("/v1/models/")) && wantsAnthropicShape(headers)),
  body: anthropicErrorBody,
};
