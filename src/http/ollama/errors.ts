import { isFreeholdError, withoutPaths } from "../../core/errors.js";

/** Ollama's error body is `{"error": "message"}` with the HTTP status carrying the kind. The one mapper for this API. */
export function ollamaErrorBody(error: unknown): { status: number; body: { error: string } } {
  if (isFreeholdError(error)) {
    if (error.code === "model_not_found") {
      const name = /'([^']+)'/.exec(error.message)?.[1] ?? "";
      return { status: 404, body: { error: `model "${name}" not found, try pulling it first` } };
    }
    return { status: error.status, body: { error: withoutPaths(error.message, error.status >= 500) } };
  }
  return { status: 500, body: { error: "internal server error" } };
}

/** Ollama's requests: everything under /api/. */
export const ollamaErrors = { claims: (path: string) => path.startsWith("/api/"), body: ollamaErrorBody };
