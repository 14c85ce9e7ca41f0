// Every data call goes to this server's own HTTP API with the key from this tab (sessionStorage, never a cookie:
// a cookie would be sent by other sites' forms too, a header is not).

const KEY = "freehold.key";

export const session = {
  get key(): string | null {
    return sessionStorage.getItem(KEY);
  },
  set(key: string): void {
    sessionStorage.setItem(KEY, key);
  },
  clear(): void {
    sessionStorage.removeItem(KEY);
  },
};

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** The message in any of the three APIs' error shapes (OpenAI/Anthropic `{error: {message}}`, Ollama `{error}`). */
function messageOf(status: number, text: string): string {
  try {
    const body = JSON.parse(text) as { error?: string | { message?: string } };
    if (typeof body.error === "string") return body.error;
    if (body.error?.message) return body.error.message;
  } catch {
    // not JSON: fall through to the status line
  }
  return text.trim() || `the server answered HTTP ${status}`;
}

export function authHeaders(extra: Record<string, string> = {}): Record<string, string> {
  const key = session.key;
  return { ...(key ? { authorization: `Bearer ${key}` } : {}), ...extra };
}

/** fetch with the key; a non-2xx answer becomes an ApiError carrying the server's words. */
export async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = authHeaders(init.body ? { "content-type": "application/json" } : {});
  const response = await fetch(path, { ...init, headers: { ...headers, ...(init.headers as object) } });
  if (!response.ok) throw new ApiError(messageOf(response.status, await response.text()), response.status);
  return response;
}

export async function getJson<T>(path: string): Promise<T> {
  return (await request(path)).json() as Promise<T>;
}

export async function sendJson<T>(method: string, path: string, body: unknown): Promise<T> {
  const response = await request(path, { method, body: JSON.stringify(body) });
  const text = await response.text();
  return (text ? JSON.parse(text) : null) as T;
}

/** Lines of an NDJSON or SSE body as they arrive. */
export async function* lines(response: Response): AsyncGenerator<string> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += value;
    let newline = buffer.indexOf("\n");
    while (newline >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (line) yield line;
      newline = buffer.indexOf("\n");
    }
  }
  if (buffer.trim()) yield buffer.trim();
}

export function errorText(error: unknown): string {
  if (error instanceof DOMException && error.name === "AbortError") return "Stopped.";
  return error instanceof Error ? error.message : String(error);
}

export const formatBytes = (bytes: number) =>
  bytes >= 1e9
    ? `${(bytes / 1e9).toFixed(1)} GB`
    : bytes >= 1e6
      ? `${(bytes / 1e6).toFixed(1)} MB`
      : `${(bytes / 1e3).toFixed(0)} KB`;

/** Dollars with two significant digits for fractions of a cent (local answers cost millionths), never "1e-7". */
export const formatUsd = (value: number) => {
  if (value === 0) return "$0";
  const sign = value < 0 ? "-" : "";
  const size = Math.abs(value);
  const digits = size >= 0.01 ? 2 : Math.min(12, 1 - Math.floor(Math.log10(size)));
  return `${sign}$${size.toFixed(digits)}`;
};
