/** Whether an answer is streamed (SSE or NDJSON): its body is still being written after the handler returns. */
export function isStreamed(response: Response): boolean {
  const type = response.headers.get("content-type") ?? "";
  return type.startsWith("text/event-stream") || type.startsWith("application/x-ndjson");
}

/**
 * Passes a body through and calls `onEnd` once, with the bytes sent, when it finishes, fails or is cancelled by the
 * client. The one way the HTTP layer notices the end of a streamed answer (the in-flight count, the ledger's size).
 */
export function onBodyEnd(
  body: ReadableStream<Uint8Array>,
  onEnd: (bytes: number) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  let bytes = 0;
  let ended = false;
  const end = () => {
    if (ended) return;
    ended = true;
    onEnd(bytes);
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const { done, value } = await reader.read();
          if (done) {
            end();
            controller.close();
          } else {
            bytes += value.byteLength;
            controller.enqueue(value);
          }
        } catch (error) {
          end();
          controller.error(error);
        }
      },
      async cancel(reason) {
        end();
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
