import { postJson } from "./server.js";

/**
 * Streams cut off or killed mid-way, for the tests of cancellation, crashes, queues and shutdown on a real server
 * (server-openai, engine-parity, engine-queue, server-concurrency, server-lifecycle, server-residency).
 */

/** A completion that keeps streaming for a long while (1,900 tokens, end of story ignored): one to interrupt. */
export const longStream = {
  model: "stories",
  prompt: "Once upon a time",
  max_tokens: 1900,
  ignore_eos: true,
  stream: true,
};

/** A streamed answer that has started: its first chunk has been read, so the model is generating it. */
export interface OpenStream {
  response: Response;
  reader: ReadableStreamDefaultReader<Uint8Array>;
  /** The client goes away: the request is aborted and the body cancelled. */
  hangUp(): Promise<void>;
}

/** POSTs a streamed request to `url` and waits for its first chunk. */
export async function startStream(url: string, body: unknown): Promise<OpenStream> {
  const controller = new AbortController();
  const response = await postJson(url, body, { signal: controller.signal });
  const reader = response.body!.getReader();
  await reader.read();
  return {
    response,
    reader,
    async hangUp() {
      controller.abort();
      await reader.cancel().catch(() => {});
    },
  };
}

/** `clients` clients one after another start `body` streaming, take its first chunk and hang up. */
export async function disconnectMidStream(url: string, clients: number, body: unknown = longStream): Promise<void> {
  for (let i = 0; i < clients; i++) await (await startStream(url, body)).hangUp();
}

/** What is left of a stream, decoded, up to its end. */
export async function readToEnd(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    text += decoder.decode(value, { stream: true });
  }
}
