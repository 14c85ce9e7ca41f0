import { isFreeholdError, withoutPaths } from "../../core/errors.js";

/** OpenAI's error body: {"error": {"message", "type", "param", "code"}}. The one mapper for this API. */
export function openAIErrorBody(error: unknown): {
  status: number;
  body: { error: { message: string; type: string; param: string | null; code: string | null } };
} {
  if (isFreeholdError(error)) {
    const type =
      error.status >= 500
        ? "server_error"
        : error.status === 429
          ? "rate_limit_exceeded"
          : error.status === 401
            ? "authentication_error"
            : "invalid_request_error";
    return {
      status: error.status,
      body: {
        error: {
          message: withoutPaths(error.message, error.status >= 500),
          type,
          param: error.param,
          code: error.code,
        },
      },
    };
  }
  return {
    status: 500,
    body: { error: { message: "internal server error", type: "server_error", param: null, code: "internal_error" } },
  };
}

/** OpenAI's shape answers every request no other API claims (the Responses API, freehold's own routes). */
export const openAIErrors = { claims: () => true, body: openAIErrorBody };
