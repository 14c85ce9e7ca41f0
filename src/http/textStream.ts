const encoder = new TextEncoder();

/**
 * A pull-based byte stream over an async iterator: `render` turns each item into text (or null to skip it); `close`
 * adds a last piece, `fail` renders an error into the stream. Pull-based so a slow client applies backpressure to
 * generation; cancel() (the client went away) ends the iterator, whose `finally` blocks cancel the work upstream.
 * The framing (SSE, NDJSON) is the caller's.
 */
export function textStream<T>(
  iterator: AsyncIterator<T>,
  render: (item: T) => string | null,
  options: { close?: () => string; fail: (error: unknown) => string },
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
              const last = options.close?.();
              if (last) controller.enqueue(encoder.encode(last));
              controller.close();
              return;
            }
            const text = render(result.value);
            if (text !== null) {
              controller.enqueue(encoder.encode(text));
              return;
            }
          } catch (error) {
            finished = true;
            controller.enqueue(encoder.encode(options.fail(error)));
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
