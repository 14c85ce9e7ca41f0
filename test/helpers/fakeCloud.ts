import { createServer, type Server } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A fake paid model and judge on loopback, speaking OpenAI's chat and legacy completions (streamed, as freehold's
 * provider asks). `answer` decides each completion's text; requests asking for the `verdict` JSON schema are judge
 * calls, answered by `judge` with a fixed verdict. Usage is always 7 prompt tokens and `completionTokens` tokens, so
 * costs can be checked exactly.
 */
export interface FakeCloud {
  base: string;
  requests: { path: string; body: Record<string, unknown> }[];
  close(): Promise<void>;
}

export interface FakeCloudOptions {
  answer: (prompt: string) => string;
  judge: (question: string) => boolean;
  completionTokens?: number;
  delayMs?: number;
}

function promptText(body: Record<string, unknown>): string {
  if (typeof body.prompt === "string") return body.prompt;
  const messages = (body.messages ?? []) as { role: string; content: string }[];
  return messages.map((message) => message.content).join("\n");
}

export async function startFakeCloud(options: FakeCloudOptions): Promise<FakeCloud> {
  const sockets = new Set<Socket>();
  const requests: FakeCloud["requests"] = [];
  const server: Server = createServer(async (request, response) => {
    let text = "";
    for await (const chunk of request) text += chunk;
    const body = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    const path = request.url ?? "";
    requests.push({ path, body });
    if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    const question = promptText(body);
    const format = body.response_format as { json_schema?: { name?: string } } | undefined;
    const reply =
      format?.json_schema?.name === "verdict"
        ? JSON.stringify({ reason: "fixed verdict", pass: options.judge(question) })
        : options.answer(question);
    const legacy = path.endsWith("/completions") && !path.endsWith("/chat/completions");
    const usage = { prompt_tokens: 7, completion_tokens: options.completionTokens ?? 10 };
    const chunk = (choice: Record<string, unknown>) =>
      `data: ${JSON.stringify({ id: "fake", object: "chunk", created: 1, model: body.model, choices: [{ index: 0, ...choice }] })}\n\n`;
    response.writeHead(200, { "content-type": "text/event-stream" });
    for (let i = 0; i < reply.length; i += 8) {
      const part = reply.slice(i, i + 8);
      response.write(chunk(legacy ? { text: part } : { delta: { content: part } }));
    }
    response.write(chunk({ ...(legacy ? { text: "" } : { delta: {} }), finish_reason: "stop" }));
    response.write(`data: ${JSON.stringify({ id: "fake", object: "chunk", created: 1, choices: [], usage })}\n\n`);
    response.end("data: [DONE]\n\n");
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}/v1`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
