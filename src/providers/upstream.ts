import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { FreeholdError } from "../core/errors.js";

/**
 * HTTP to a configured upstream. Credentials are pinned to the configured base URL's origin: a path can never
 * point elsewhere, and redirects are never followed (a redirect to another host would carry the key there).
 */

/** An upstream answered with an error, could not be reached, or broke off; `retryAfterSeconds` from its header. */
export class UpstreamError extends FreeholdError {
  constructor(
    message: string,
    options: { status: number; code: string; retryable: boolean; retryAfterSeconds?: number; cause?: unknown },
  ) {
    super(message, {
      code: options.code,
      status: options.status,
      type:
        options.status === 429
          ? "rate_limit_error"
          : options.status === 503
            ? "overloaded_error"
            : options.status >= 500
              ? "server_error"
              : "invalid_request_error",
      retryable: options.retryable,
      ...(options.retryAfterSeconds !== undefined ? { retryAfterSeconds: options.retryAfterSeconds } : {}),
      cause: options.cause,
    });
  }
}

export interface UpstreamOptions {
  /** The provider's name in freehold.yaml, for messages. */
  name: string;
  baseUrl: string;
  headers: Record<string, string>;
  /** Longest silence between two chunks of an answer's body before it is given up (default DEFAULT_IDLE_TIMEOUT_MS). */
  idleTimeoutMs?: number | undefined;
}

/**
 * Limits on what an upstream may send. A stream that stalls holds a connection and the caller's reservation; a line
 * or body without an end would grow in memory until the process dies. Exceeding one is a clear, retryable 502/504.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;
/** One line of an SSE or NDJSON stream (an event's `data:` line, an Ollama line). */
export const MAX_LINE_BYTES = 1024 * 1024;
/** One SSE event (its data lines joined). */
export const MAX_EVENT_BYTES = 4 * 1024 * 1024;
/** A whole answer that is not streamed (a non-streamed completion, an error body, a model list). */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** The body's cap was passed: the answer is not read further. */
function tooLarge(name: string, what: string, limit: number): UpstreamError {
  return new UpstreamError(
    `provider ${name}: ${what} is larger than freehold accepts (${limit.toLocaleString("en-US")} bytes); the answer was cut off`,
    { status: 502, code: "upstream_too_large", retryable: false },
  );
}

/** Parses Retry-After (seconds or an HTTP date) into seconds. */
export function retryAfterSeconds(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, (date - Date.now()) / 1000);
}

function upstreamMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: unknown; message?: unknown };
    const error = body.error;
    if (typeof error === "string") return error;
    if (error && typeof error === "object" && typeof (error as { message?: unknown }).message === "string")
      return (error as { message: string }).message;
    if (typeof body.message === "string") return body.message;
  } catch {}
  return text.slice(0, 300).trim() || "(empty body)";
}

/** An upstream that sends `apiKey` (if any) as a Bearer token, with the provider's extra headers. */
export function bearerUpstream(options: {
  name: string;
  baseUrl: string;
  apiKey?: string | undefined;
  headers?: Record<string, string> | undefined;
  idleTimeoutMs?: number | undefined;
}): Upstream {
  return new Upstream({
    name: options.name,
    baseUrl: options.baseUrl,
    idleTimeoutMs: options.idleTimeoutMs,
    headers: { ...(options.headers ?? {}), ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}) },
  });
}

export class Upstream {
  private readonly base: URL;
  constructor(readonly options: UpstreamOptions) {
    this.base = new URL(options.baseUrl.endsWith("/") ? options.baseUrl : `${options.baseUrl}/`);
    if (this.base.protocol !== "http:" && this.base.protocol !== "https:")
      throw new Error(`provider ${options.name}: base_url must be http:// or https://, not ${this.base.protocol}`);
  }

  get origin(): string {
    return this.base.origin;
  }

  /** `path` (relative, like "chat/completions") under the base URL; refuses anything that leaves its origin. */
  url(path: string): URL {
    const url = new URL(path.replace(/^\/+/, ""), this.base);
    if (url.origin !== this.base.origin)
      throw new Error(`provider ${this.options.name}: ${path} leaves ${this.base.origin}`);
    return url;
  }

  /** Sends a request; a non-2xx answer, a redirect or a network failure becomes an UpstreamError. */
  async request(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<UpstreamResponse> {
    const name = this.options.name;
    let response: IncomingMessage;
    try {
      response = await send(this.url(path), method, this.options.headers, body, signal);
    } catch (error) {
      if (signal?.aborted) throw signal.reason ?? error;
      throw new UpstreamError(`provider ${name} (${this.base.origin}) could not be reached: ${describeCause(error)}`, {
        status: 502,
        code: "upstream_unreachable",
        retryable: true,
        cause: error,
      });
    }
    const status = response.statusCode ?? 0;
    const header = (key: string) => {
      const value = response.headers[key];
      return Array.isArray(value) ? value[0] : value;
    };
    if (status >= 300 && status < 400) {
      response.destroy();
      throw new UpstreamError(
        `provider ${name} answered with a redirect (${status} to ${header("location") ?? "?"}); freehold does not follow redirects with credentials — fix base_url`,
        { status: 502, code: "upstream_redirect", retryable: false },
      );
    }
    const answer = new UpstreamResponse(status, response, name, this.options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
    if (status < 200 || status >= 300) {
      const text = await answer.text().catch(() => "");
      const retryAfter = retryAfterSeconds(header("retry-after") ?? null);
      const mapped = status === 429 || status === 529 ? (status === 429 ? 429 : 503) : status >= 500 ? 502 : status;
      throw new UpstreamError(`provider ${name} answered ${status}: ${upstreamMessage(text)}`, {
        status: mapped,
        code:
          status === 429
            ? "upstream_rate_limited"
            : status >= 500 || status === 529
              ? "upstream_error"
              : "upstream_rejected",
        retryable: status === 408 || status === 429 || status >= 500,
        ...(retryAfter !== undefined ? { retryAfterSeconds: retryAfter } : {}),
      });
    }
    return answer;
  }

  async json<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.request(method, path, body, signal);
    return (await response.json()) as T;
  }
}

/**
 * Keep-alive connections, shared by every upstream of a scheme. node:http rather than fetch: per request it costs
 * a fraction of fetch's WHATWG streams and abort bookkeeping (measured: fetch was 12% of the gateway's CPU).
 */
const agents = {
  "http:": new HttpAgent({ keepAlive: true, maxSockets: 256 }),
  "https:": new HttpsAgent({ keepAlive: true, maxSockets: 256 }),
};

function send(
  url: URL,
  method: string,
  headers: Record<string, string>,
  body: unknown,
  signal: AbortSignal | undefined,
): Promise<IncomingMessage> {
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
  const https = url.protocol === "https:";
  return new Promise((resolve, reject) => {
    const outgoing = (https ? httpsRequest : httpRequest)(url, {
      method,
      agent: agents[https ? "https:" : "http:"],
      headers: {
        ...(payload ? { "content-type": "application/json", "content-length": String(payload.length) } : {}),
        ...headers,
      },
      ...(signal ? { signal } : {}),
    });
    outgoing.once("response", resolve);
    outgoing.once("error", reject);
    outgoing.end(payload);
  });
}

/** An upstream's answer: its status, and its body as it arrives (read once), idle-timed and capped. */
export class UpstreamResponse {
  constructor(
    readonly status: number,
    private readonly message: IncomingMessage,
    private readonly name = "upstream",
    private readonly idleTimeoutMs = DEFAULT_IDLE_TIMEOUT_MS,
  ) {}

  /**
   * The body's chunks as they arrive; a connection that breaks off ends the iteration with an error, and so does a
   * silence longer than the idle timeout between two chunks (the connection is closed: a stalled stream must not
   * hold the caller's reservation until the client gives up).
   */
  get body(): AsyncIterable<Uint8Array> {
    return idleLimited(this.message, this.name, this.idleTimeoutMs);
  }

  /** The whole body, at most MAX_BODY_BYTES. */
  async text(): Promise<string> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of this.body) {
      size += chunk.byteLength;
      if (size > MAX_BODY_BYTES) {
        this.message.destroy();
        throw tooLarge(this.name, "the answer's body", MAX_BODY_BYTES);
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks).toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }
}

async function* idleLimited(message: IncomingMessage, name: string, idleMs: number): AsyncGenerator<Uint8Array> {
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(
      () =>
        message.destroy(
          new UpstreamError(
            `provider ${name}: nothing arrived for ${idleMs / 1000}s in the middle of the answer; gave up on it (retry)`,
            { status: 504, code: "upstream_idle_timeout", retryable: true },
          ),
        ),
      idleMs,
    );
  };
  arm();
  try {
    for await (const chunk of message) {
      // Only the upstream's silence counts: while the chunk waits for a slow reader, the clock is stopped.
      clearTimeout(timer);
      yield chunk as Uint8Array;
      arm();
    }
  } finally {
    clearTimeout(timer);
  }
}

function describeCause(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = (error as { code?: unknown }).code;
  return (
    cause?.code ??
    cause?.message ??
    (typeof code === "string" ? code : undefined) ??
    (error instanceof Error ? error.message : String(error))
  );
}

/** The stream broke off (connection dropped, malformed frame) before the upstream said it was done. */
export function droppedStream(name: string, error: unknown): UpstreamError {
  // Already explained (an idle timeout, a cap): keep its own code and message.
  if (error instanceof UpstreamError) return error;
  return new UpstreamError(`provider ${name}: the stream broke off: ${describeCause(error)}`, {
    status: 502,
    code: "upstream_stream_dropped",
    retryable: true,
    cause: error,
  });
}

/** Text lines of a body, as they arrive; a line longer than MAX_LINE_BYTES ends it with an error. */
export async function* lines(body: AsyncIterable<Uint8Array>, name = "upstream"): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = "";
  for await (const chunk of body) {
    const scanned = buffer.length;
    buffer += decoder.decode(chunk, { stream: true });
    // Only the new text can hold a newline: scanning the whole buffer each time would be quadratic in a long line.
    let newline = buffer.indexOf("\n", scanned);
    let start = 0;
    while (newline >= 0) {
      yield buffer.slice(start, newline).replace(/\r$/, "");
      start = newline + 1;
      newline = buffer.indexOf("\n", start);
    }
    buffer = buffer.slice(start);
    // A UTF-16 unit is at most 3 UTF-8 bytes; counting units keeps this cheap and never lets more than 3x through.
    if (buffer.length > MAX_LINE_BYTES) throw tooLarge(name, "one line of the stream", MAX_LINE_BYTES);
  }
  buffer += decoder.decode();
  if (buffer.length > MAX_LINE_BYTES) throw tooLarge(name, "one line of the stream", MAX_LINE_BYTES);
  if (buffer) yield buffer;
}

/** Server-sent events: `event` (or "message") and the joined `data` lines; an event over MAX_EVENT_BYTES is an error. */
export async function* serverSentEvents(
  body: AsyncIterable<Uint8Array>,
  name = "upstream",
): AsyncGenerator<{ event: string; data: string }> {
  let event = "message";
  let data: string[] = [];
  let size = 0;
  for await (const line of lines(body, name)) {
    if (line === "") {
      if (data.length > 0) yield { event, data: data.join("\n") };
      event = "message";
      data = [];
      size = 0;
    } else if (line.startsWith("data:")) {
      const part = line.slice(5).replace(/^ /, "");
      size += part.length + 1;
      if (size > MAX_EVENT_BYTES) throw tooLarge(name, "one event of the stream", MAX_EVENT_BYTES);
      data.push(part);
    } else if (line.startsWith("event:")) event = line.slice(6).trim();
  }
  if (data.length > 0) yield { event, data: data.join("\n") };
}
