import type { Context, Hono } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { FreeholdError, isFreeholdError } from "../core/errors.js";
import { anthropicErrors } from "./anthropic/errors.js";
import type { AppEnv } from "./appEnv.js";
import { ollamaErrors } from "./ollama/errors.js";
import { openAIErrors } from "./openai/errors.js";

/** One API's error mapper, and which requests are that API's (so their errors are answered in its shape). */
export interface ApiErrors {
  claims(path: string, headers: Headers): boolean;
  body(error: unknown): { status: number; body: unknown };
}

/** Each API registers its mapper here, once; the first that claims a request answers its errors (OpenAI's: all). */
const apiErrors: readonly ApiErrors[] = [anthropicErrors, ollamaErrors, openAIErrors];

/** The error body for a request in its API's shape, with the status it goes out with. */
export function errorBodyFor(request: Request, error: unknown): { status: number; body: unknown } {
  const path = new URL(request.url).pathname;
  const mapper = apiErrors.find((api) => api.claims(path, request.headers)) ?? openAIErrors;
  return mapper.body(error);
}

/** The one place Retry-After is written: whole seconds, rounded up (a client that waits less is refused again). */
export function setRetryAfter(c: Context, seconds: number): void {
  c.header("Retry-After", String(Math.ceil(seconds)));
}

/**
 * The answer to a request that failed before its body started (streamed failures are frames of the stream): the
 * API's error shape, Retry-After when the error says when to come back, Connection: close after a refused body.
 */
export function errorResponse(c: Context, error: unknown): Response {
  const { status, body } = errorBodyFor(c.req.raw, error);
  // The rest of a refused body was never read: the connection cannot carry another request.
  if (status === 413) c.header("Connection", "close");
  if (isFreeholdError(error) && error.retryAfterSeconds !== undefined) setRetryAfter(c, error.retryAfterSeconds);
  if (status >= 500 && !isFreeholdError(error)) console.error(error);
  return c.json(body, status as ContentfulStatusCode);
}

/** Every failure and unknown URL of the app answered by errorResponse: each API's routes throw, none maps. */
export function registerErrorHandler(app: Hono<AppEnv>): void {
  app.notFound((c) => {
    const path = new URL(c.req.url).pathname;
    const error = new FreeholdError(`Unknown request URL: ${c.req.method} ${path}`, {
      code: "unknown_url",
      status: 404,
      type: "not_found_error",
    });
    return errorResponse(c, error);
  });
  app.onError((error, c) => errorResponse(c, error));
}
