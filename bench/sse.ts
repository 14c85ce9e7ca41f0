// Client-side timing of one streamed OpenAI-compatible request (SSE), the same for every server: /v1/completions for
// the single-stream and concurrency modes, /v1/chat/completions for the multi-turn mode.
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
  /** performance.now() when the request was sent and when its last text chunk arrived (HTTP systems). */
  sentAt?: number;
  lastTextAt?: number;
  /** The generated text (chat requests, whose answers go back into the history). */
  text?: string;
}

interface StreamChunk {
  choices?: { text?: string; delta?: { content?: string | null } }[];
  usage?: {
    prompt_tokens?: number;
    completion_tokens?: number;
    prompt_tokens_details?: { cached_tokens?: number };
  } | null;
  /** llama-server's own numbers: cache_n = prompt tokens taken from the slot's cache. */
  timings?: { cache_n?: number };
  error?: unknown;
}

export function decodeRate(completionTokens: number, firstMs: number, lastMs: number): number {
  if (completionTokens < 2 || lastMs <= firstMs) return Number.NaN;
  return ((completionTokens - 1) * 1000) / (lastMs - firstMs);
}

/** POSTs `body` to `${baseUrl}/v1/completions` (which must ask for `stream: true`) and times the stream. */
export async function timedCompletion(baseUrl: string, body: Record<string, unknown>): Promise<Sample> {
  const { text: _text, ...sample } = await timedStream(new URL("/v1/completions", baseUrl), body);
  return sample;
}

/** timedCompletion, keeping the generated text (the draft mode compares answers). */
export function timedCompletionText(baseUrl: string, body: Record<string, unknown>): Promise<Sample> {
  return timedStream(new URL("/v1/completions", baseUrl), body);
}

/** The same for `${baseUrl}/v1/chat/completions`; the sample carries the answer's text. */
export function timedChat(baseUrl: string, body: Record<string, unknown>): Promise<Sample> {
  return timedStream(new URL("/v1/chat/completions", baseUrl), body);
}

/**
 * POSTs a streaming request and times the stream as it arrives. The token counts come from the stream's usage
 * (`stream_options.include_usage`); cached tokens from usage.prompt_tokens_details or llama-server's timings.cache_n.
 */
function timedStream(url: URL, body: Record<string, unknown>): Promise<Sample> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise<Sample>((resolve, reject) => {
    const started = performance.now();
    let firstAt = 0;
    let lastAt = 0;
    let textChunks = 0;
    let text = "";
    let usage: StreamChunk["usage"];
    let cacheN: number | undefined;
    let buffer = "";
    let finished = false;

    const onEvent = (data: string, at: number) => {
      if (data === "[DONE]") {
        finished = true;
        return;
      }
      const chunk = JSON.parse(data) as StreamChunk;
      if (chunk.error) throw new Error(`server error in stream: ${JSON.stringify(chunk.error)}`);
      const choice = chunk.choices?.[0];
      const piece = choice?.text ?? choice?.delta?.content ?? "";
      if (piece.length > 0) {
        if (firstAt === 0) firstAt = at;
        lastAt = at;
        textChunks++;
        text += piece;
      }
      if (chunk.usage) usage = chunk.usage;
      if (chunk.timings?.cache_n !== undefined) cacheN = chunk.timings.cache_n;
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
          const cachedTokens = usage?.prompt_tokens_details?.cached_tokens ?? cacheN;
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
              ...(cachedTokens !== undefined ? { cachedTokens } : {}),
              textChunks,
              totalMs: endedAt - started,
              sentAt: started,
              lastTextAt: lastAt,
              text,
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
