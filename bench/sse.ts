// Client-side timing of one streamed /v1/completions request (OpenAI-compatible SSE), the same for every server.
import { request } from "node:http";

/** One timed generation. */
export interface Sample {
  /** From sending the request (or, in process, from starting) to the first non-empty text. */
  ttftMs: number;
  /** (completion tokens − 1) / (time of the last token − time of the first token). */
  decodeTokensPerSecond: number;
  completionTokens: number;
  promptTokens: number;
  /** Prompt tokens the server took from its cache, where it says (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens?: number;
  /** How many non-empty text chunks arrived (a sanity check: about one per token). */
  textChunks: number;
  totalMs: number;
}

interface CompletionChunk {
  choices?: { text?: string }[];
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number };
  } | null;
  error?: unknown;
}

export function decodeRate(completionTokens: number, firstMs: number, lastMs: number): number {
  if (completionTokens < 2 || lastMs <= firstMs) return Number.NaN;
  return ((completionTokens - 1) * 1000) / (lastMs - firstMs);
}

/**
 * POSTs `body` (which must ask for `stream: true`) to `${baseUrl}/v1/completions` and times the stream as it arrives.
 * The token count comes from the stream's usage (`stream_options.include_usage`).
 */
export function timedCompletion(baseUrl: string, body: Record<string, unknown>): Promise<Sample> {
  const url = new URL("/v1/completions", baseUrl);
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise<Sample>((resolve, reject) => {
    const started = performance.now();
    let firstAt = 0;
    let lastAt = 0;
    let textChunks = 0;
    let usage: CompletionChunk["usage"];
    let buffer = "";
    let finished = false;

    const onEvent = (data: string, at: number) => {
      if (data === "[DONE]") {
        finished = true;
        return;
      }
      const chunk = JSON.parse(data) as CompletionChunk;
      if (chunk.error) throw new Error(`server error in stream: ${JSON.stringify(chunk.error)}`);
      const text = chunk.choices?.[0]?.text ?? "";
      if (text.length > 0) {
        if (firstAt === 0) firstAt = at;
        lastAt = at;
        textChunks++;
      }
      if (chunk.usage) usage = chunk.usage;
    };

    const req = request(
      url,
      {
        method: "POST",
        // A new connection per request: an idle kept-alive socket may have been closed by the server meanwhile
        // (llama-server's keep-alive timeout is 5 s). Connecting over loopback costs the same for every server.
        agent: false,
        headers: { "content-type": "application/json", "content-length": payload.length, accept: "text/event-stream" },
      },
      (res) => {
        res.setEncoding("utf8");
        if (res.statusCode !== 200) {
          let text = "";
          res.on("data", (part: string) => {
            text += part;
          });
          res.on("end", () => reject(new Error(`HTTP ${res.statusCode} from ${url}: ${text.slice(0, 500)}`)));
          return;
        }
        res.on("data", (part: string) => {
          const at = performance.now();
          buffer += part;
          // Events end with a blank line; "data:" lines carry the JSON.
          let end = buffer.indexOf("\n\n");
          while (end !== -1) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            for (const line of event.split("\n")) {
              if (!line.startsWith("data:")) continue;
              try {
                onEvent(line.slice(5).trim(), at);
              } catch (error) {
                req.destroy(error as Error);
                return;
              }
            }
            end = buffer.indexOf("\n\n");
          }
        });
        res.on("end", () => {
          const endedAt = performance.now();
          const completionTokens = usage?.completion_tokens;
          if (!finished && completionTokens === undefined) {
            reject(new Error(`the stream from ${url} ended without [DONE] or usage`));
          } else if (completionTokens === undefined) {
            reject(new Error(`the stream from ${url} had no usage (stream_options.include_usage)`));
          } else if (firstAt === 0) {
            reject(new Error(`the stream from ${url} had no text`));
          } else {
            resolve({
              ttftMs: firstAt - started,
              decodeTokensPerSecond: decodeRate(completionTokens, firstAt, lastAt),
              completionTokens,
              promptTokens: usage?.prompt_tokens ?? 0,
              ...(usage?.prompt_tokens_details?.cached_tokens !== undefined
                ? { cachedTokens: usage.prompt_tokens_details.cached_tokens }
                : {}),
              textChunks,
              totalMs: endedAt - started,
            });
          }
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

/** GET a URL; resolves with the status code (0 when the connection fails). */
export function getStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method: "GET", agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", () => resolve(0));
    req.setTimeout(2_000, () => req.destroy());
    req.end();
  });
}
