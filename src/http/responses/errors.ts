import { isFreeholdError, withoutPaths } from "../../core/errors.js";

/**
 * The Responses API's streamed `error` event fields (its errors before a stream are OpenAI's body: openai/errors.ts,
 * picked by errorResponse.ts). Paths are stripped as everywhere; an unexpected error says nothing internal.
 */
export function responsesErrorFields(error: unknown): { code: string; message: string; param: string | null } {
  if (isFreeholdError(error))
    return { code: error.code, message: withoutPaths(error.message, error.status >= 500), param: error.param };
  return { code: "internal_error", message: "internal server error", param: null };
}
