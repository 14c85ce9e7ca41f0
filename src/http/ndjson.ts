const encoder = new TextEncoder();

/**
 * A pull-based NDJSON body (Ollama's streaming format): one JSON object per line. Like sseStream it applies
 * backpressure and ends the iterator when the client goes away.
 */
export function ndjsonStream<T>(
  iterator: AsyncIterator<T>,
  encode: (item: T) => unknown[],
  onError: (error: unknown) => unknown,
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
              controller.close();
              return;
            }
            const lines = encode(result.value);
            if (lines.length > 0) {
              controller.enqueue(encoder.encode(lines.map((line) => `${JSON.stringify(line)}\n`).join("")));
              return;
            }
          } catch (error) {
            finished = true;
            controller.enqueue(encoder.encode(`${JSON.stringify(onError(error))}\n`));
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

export const ndjsonHeaders = {
  "content-type": "application/x-ndjson",
  "transfer-encoding": "chunked",
} as const;
