import { textStream } from "./textStream.js";

/** An NDJSON body (Ollama's streaming format): one JSON object per line. */
export function ndjsonStream<T>(
  iterator: AsyncIterator<T>,
  encode: (item: T) => unknown[],
  onError: (error: unknown) => unknown,
): ReadableStream<Uint8Array> {
  return textStream(
    iterator,
    (item) => {
      const lines = encode(item);
      return lines.length === 0 ? null : lines.map((line) => `${JSON.stringify(line)}\n`).join("");
    },
    { fail: (error) => `${JSON.stringify(onError(error))}\n` },
  );
}

export const ndjsonHeaders = {
  "content-type": "application/x-ndjson",
  "transfer-encoding": "chunked",
} as const;
