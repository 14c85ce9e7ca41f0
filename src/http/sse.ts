const encoder = new TextEncoder();

/**
 * A pull-based SSE body over an async iterator: one `data:` frame per item, then the optional terminator.
 * Pull-based so a slow client applies backpressure to generation; cancel() (client gone) ends the iterator,
 * whose `finally` blocks cancel the work upstream.
 */
export function sseStream<T>(
  iterator: AsyncIterator<T>,
  encode: (item: T) => string | null,
  options: { done?: string; onError?: (error: unknown) => string } = {},
): ReadableStream<Uint8Array> {
  let finished = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        // Loop until something is enqueued: a pull that resolves without enqueuing is never called again.
        while (!finished) {
          try {
            const result = await iterator.next();
            if (result.done) {
              finished = true;
              if (options.done) controller.enqueue(encoder.encode(`data: ${options.done}\n\n`));
              controller.close();
              return;
            }
            const frame = encode(result.value);
            if (frame !== null) {
              controller.enqueue(encoder.encode(`data: ${frame}\n\n`));
              return;
            }
          } catch (error) {
            finished = true;
            if (options.onError) controller.enqueue(encoder.encode(`data: ${options.onError(error)}\n\n`));
            controller.close();
          }
        }
      },
      async cancel() {
        finished = true;
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
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
