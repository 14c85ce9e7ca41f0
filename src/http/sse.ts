import { textStream } from "./textStream.js";

/** An SSE body: one `data:` frame per item (`encode` may return several frames joined by "\n\ndata: "). */
export function sseStream<T>(
  iterator: AsyncIterator<T>,
  encode: (item: T) => string | null,
  options: { done?: string; onError?: (error: unknown) => string } = {},
): ReadableStream<Uint8Array> {
  return textStream(
    iterator,
    (item) => {
      const frame = encode(item);
      return frame === null ? null : `data: ${frame}\n\n`;
    },
    {
      ...(options.done ? { close: () => `data: ${options.done}\n\n` } : {}),
      fail: (error) => (options.onError ? `data: ${options.onError(error)}\n\n` : ""),
    },
  );
}

/**
 * `transfer-encoding: chunked` matters: without it @hono/node-server reads ahead (and sleeps a timer tick) hoping to
 * send a Content-Length, which delays the first token by a millisecond or more.
 */
export const sseHeaders = {
  "content-type": "text/event-stream; charset=utf-8",
  "transfer-encoding": "chunked",
  "cache-control": "no-cache",
  connection: "keep-alive",
  "x-accel-buffering": "no",
} as const;

/** One named SSE event: an `event:` line, then its JSON as the `data:` line (Anthropic's framing). */
export interface SseEvent {
  event: string;
  data: unknown;
}

function eventFrames(events: readonly SseEvent[]): string {
  return events.map((item) => `event: ${item.event}\ndata: ${JSON.stringify(item.data)}\n\n`).join("");
}

/**
 * An SSE body of named events: `encode` turns each item into zero or more events; `close` adds the last ones when
 * the iterator ends, `onError` renders a failure as a final event. Pull-based like sseStream.
 */
export function sseEventStream<T>(
  iterator: AsyncIterator<T>,
  encode: (item: T) => readonly SseEvent[],
  options: { close?: () => readonly SseEvent[]; onError: (error: unknown) => SseEvent },
): ReadableStream<Uint8Array> {
  const { close, onError } = options;
  return textStream(
    iterator,
    (item) => {
      const events = encode(item);
      return events.length === 0 ? null : eventFrames(events);
    },
    { ...(close ? { close: () => eventFrames(close()) } : {}), fail: (error) => eventFrames([onError(error)]) },
  );
}
