import { request } from "node:http";

/**
 * The runner's client for the llama-server it started. It connects only to that server's Unix socket (a path in a
 * private 0700 directory the runner made), never to a TCP address; nothing here can reach the network, and no
 * other local user can reach the server. Every request carries the server's one-time key as well.
 */

export class LlamaServerHttpError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** llama-server's error body: `{ "error": { "code", "message", "type" } }`. */
function errorMessage(status: number, text: string): { message: string; body: unknown } {
  try {
    const body = JSON.parse(text) as { error?: { message?: string } };
    return { message: body.error?.message ?? text.slice(0, 500), body };
  } catch {
    return { message: text.slice(0, 500) || `status ${status}`, body: text };
  }
}

export class LlamaServerClient {
  constructor(
    private readonly socketPath: string,
    private readonly apiKey: string,
  ) {}

  private open(method: string, path: string, body: unknown, signal?: AbortSignal) {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise<import("node:http").IncomingMessage>((resolve, reject) => {
      const outgoing = request(
        {
          socketPath: this.socketPath,
          path,
          method,
          headers: {
            authorization: `Bearer ${this.apiKey}`,
            ...(payload ? { "content-type": "application/json", "content-length": payload.length } : {}),
          },
          ...(signal ? { signal } : {}),
        },
        resolve,
      );
      outgoing.on("error", reject);
      outgoing.end(payload);
    });
  }

  /** One JSON request and its JSON answer; a status other than 200 is a LlamaServerHttpError. */
  async json<T>(method: "GET" | "POST", path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const response = await this.open(method, path, body, signal);
    const chunks: Buffer[] = [];
    for await (const chunk of response) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    if (response.statusCode !== 200) {
      const { message, body: errorBody } = errorMessage(response.statusCode ?? 0, text);
      throw new LlamaServerHttpError(message, response.statusCode ?? 0, errorBody);
    }
    return JSON.parse(text) as T;
  }

  /** A streamed answer (server-sent events): each `data:` payload, parsed. Aborting the signal cancels the task. */
  async *events<T>(path: string, body: unknown, signal: AbortSignal): AsyncGenerator<T> {
    const response = await this.open("POST", path, body, signal);
    if (response.statusCode !== 200) {
      const chunks: Buffer[] = [];
      for await (const chunk of response) chunks.push(chunk as Buffer);
      const { message, body: errorBody } = errorMessage(
        response.statusCode ?? 0,
        Buffer.concat(chunks).toString("utf8"),
      );
      throw new LlamaServerHttpError(message, response.statusCode ?? 0, errorBody);
    }
    response.setEncoding("utf8");
    let buffer = "";
    try {
      for await (const chunk of response) {
        buffer += chunk as string;
        let end = buffer.indexOf("\n\n");
        while (end !== -1) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          end = buffer.indexOf("\n\n");
          for (const line of frame.split("\n")) {
            if (!line.startsWith("data: ")) continue;
            const data = line.slice(6);
            if (data === "[DONE]") return;
            const parsed = JSON.parse(data) as T & { error?: { message?: string; code?: number } };
            if (parsed && typeof parsed === "object" && parsed.error)
              throw new LlamaServerHttpError(parsed.error.message ?? "llama-server failed", 500, parsed);
            yield parsed as Awaited<T>;
          }
        }
      }
    } finally {
      // Leaving early (a stop we found, a cancel): closing the connection makes llama-server drop the task.
      response.destroy();
    }
  }
}
