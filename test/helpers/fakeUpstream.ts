import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * A fake cloud on loopback that speaks OpenAI's Chat Completions and Anthropic's Messages wire formats (streamed
 * and not), and records everything it receives. Each request's behaviour comes from `behave` (default: reply).
 */
export type Behavior =
  | {
      kind: "reply";
      text?: string;
      toolCall?: { name: string; arguments: string };
      delayMs?: number;
      /** Milliseconds between streamed chunks (a slow answer a client can hang up on). */
      chunkDelayMs?: number;
      /** The prompt tokens the answer reports (default 7 for OpenAI, 9 for Anthropic). */
      inputTokens?: number;
    }
  /** Streams `chunks` text chunks, then stays silent with the connection open (never ends the answer). */
  | { kind: "stall"; chunks: number }
  /** Sends `bytes` bytes with no line end (streamed) or as one JSON body (not streamed). */
  | { kind: "huge"; bytes: number }
  /** Answers with the last user message's text, in 3-character deltas (placeholders get split across them). */
  | { kind: "echo" }
  | { kind: "error"; status: number; retryAfter?: string; message?: string }
  /** Sends the headers, then drops the connection before the first token. */
  | { kind: "drop" }
  /** Never answers (until the client gives up). */
  | { kind: "hang" };

export interface Received {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown> | null;
}

export interface FakeUpstream {
  url: string;
  /** OpenAI-style base URL (with /v1). */
  openaiBase: string;
  received: Received[];
  behave: (request: Received, index: number) => Behavior;
  close(): Promise<void>;
}

function lastUserText(body: Record<string, unknown> | null): string {
  const messages = (body?.messages ?? []) as { role: string; content: unknown }[];
  const last = [...messages].reverse().find((message) => message.role === "user");
  if (!last) return "";
  if (typeof last.content === "string") return last.content;
  return (last.content as { type: string; text?: string }[]).map((part) => part.text ?? "").join("");
}

function chunksOf(text: string, size: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

/** A response whose writes are spaced `delayMs` apart (queued; a closed connection drops the rest). */
function paced(response: ServerResponse, delayMs: number | undefined): ServerResponse {
  if (!delayMs) return response;
  let chain = Promise.resolve();
  const later = (action: () => void) => {
    chain = chain.then(async () => {
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (!response.destroyed) action();
    });
  };
  return new Proxy(response, {
    get(target, property) {
      if (property === "write") return (chunk: string) => later(() => target.write(chunk));
      if (property === "end") return (chunk?: string) => later(() => target.end(chunk));
      const value = Reflect.get(target, property);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function openAIReply(
  response: ServerResponse,
  body: Record<string, unknown>,
  deltas: string[],
  toolCall?: { name: string; arguments: string },
  inputTokens = 7,
) {
  const model = String(body.model);
  const usage = {
    prompt_tokens: inputTokens,
    completion_tokens: deltas.length,
    total_tokens: inputTokens + deltas.length,
  };
  const finish = toolCall ? "tool_calls" : "stop";
  if (!body.stream) {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(
      JSON.stringify({
        id: "chatcmpl-fake",
        object: "chat.completion",
        created: 1,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              // The same text the streamed form sends (OpenAI may send text and calls together).
              content: deltas.join("") || null,
              ...(toolCall ? { tool_calls: [{ id: "call_fake", type: "function", function: toolCall }] } : {}),
            },
            finish_reason: finish,
          },
        ],
        usage,
      }),
    );
    return;
  }
  response.writeHead(200, { "content-type": "text/event-stream" });
  const chunk = (delta: Record<string, unknown>, finishReason: string | null = null) =>
    `data: ${JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1, model, choices: [{ index: 0, delta, finish_reason: finishReason }] })}\n\n`;
  response.write(chunk({ role: "assistant", content: "" }));
  for (const text of deltas) response.write(chunk({ content: text }));
  if (toolCall) {
    response.write(
      chunk({
        tool_calls: [{ index: 0, id: "call_fake", type: "function", function: { name: toolCall.name, arguments: "" } }],
      }),
    );
    for (const part of chunksOf(toolCall.arguments, 5))
      response.write(chunk({ tool_calls: [{ index: 0, function: { arguments: part } }] }));
  }
  response.write(chunk({}, finish));
  response.write(
    `data: ${JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1, model, choices: [], usage })}\n\n`,
  );
  response.end("data: [DONE]\n\n");
}

function anthropicReply(
  response: ServerResponse,
  body: Record<string, unknown>,
  deltas: string[],
  toolCall?: { name: string; arguments: string },
  inputTokens = 9,
) {
  const model = String(body.model);
  const stopReason = toolCall ? "tool_use" : "end_turn";
  if (!body.stream) {
    response.writeHead(200, { "content-type": "application/json" });
    const content: unknown[] = deltas.length ? [{ type: "text", text: deltas.join("") }] : [];
    if (toolCall)
      content.push({ type: "tool_use", id: "toolu_fake", name: toolCall.name, input: JSON.parse(toolCall.arguments) });
    response.end(
      JSON.stringify({
        id: "msg_fake",
        type: "message",
        role: "assistant",
        model,
        content,
        stop_reason: stopReason,
        usage: { input_tokens: inputTokens, output_tokens: deltas.length },
      }),
    );
    return;
  }
  response.writeHead(200, { "content-type": "text/event-stream" });
  const send = (event: string, data: Record<string, unknown>) =>
    response.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
  send("message_start", {
    message: {
      id: "msg_fake",
      type: "message",
      role: "assistant",
      model,
      content: [],
      usage: { input_tokens: inputTokens, output_tokens: 0 },
    },
  });
  let index = 0;
  if (deltas.length) {
    send("content_block_start", { index, content_block: { type: "text", text: "" } });
    for (const text of deltas) send("content_block_delta", { index, delta: { type: "text_delta", text } });
    send("content_block_stop", { index });
    index++;
  }
  if (toolCall) {
    send("content_block_start", {
      index,
      content_block: { type: "tool_use", id: "toolu_fake", name: toolCall.name, input: {} },
    });
    for (const part of chunksOf(toolCall.arguments, 5))
      send("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: part } });
    send("content_block_stop", { index });
  }
  send("message_delta", {
    delta: { stop_reason: stopReason, stop_sequence: null },
    usage: { output_tokens: deltas.length },
  });
  send("message_stop", {});
  response.end();
}

export async function startFakeUpstream(
  behave: FakeUpstream["behave"] = () => ({ kind: "reply" }),
): Promise<FakeUpstream> {
  const received: Received[] = [];
  const sockets = new Set<Socket>();
  const fake = { received, behave } as FakeUpstream;
  const server: Server = createServer(async (request: IncomingMessage, response: ServerResponse) => {
    let text = "";
    for await (const chunk of request) text += chunk;
    let body: Record<string, unknown> | null = null;
    try {
      body = text ? (JSON.parse(text) as Record<string, unknown>) : null;
    } catch {}
    const record: Received = { method: request.method ?? "", path: request.url ?? "", headers: request.headers, body };
    received.push(record);
    if (request.method === "GET" && (record.path === "/v1/models" || record.path === "/models")) {
      response.writeHead(200, { "content-type": "application/json" });
      response.end(
        JSON.stringify({ object: "list", data: [{ id: "fake-model", object: "model", created: 1, owned_by: "fake" }] }),
      );
      return;
    }
    const behavior = fake.behave(record, received.length - 1);
    const anthropic = record.path.startsWith("/v1/messages");
    if (behavior.kind === "hang") return;
    if (behavior.kind === "error") {
      response.writeHead(behavior.status, {
        "content-type": "application/json",
        ...(behavior.retryAfter ? { "retry-after": behavior.retryAfter } : {}),
      });
      response.end(
        JSON.stringify({ error: { message: behavior.message ?? `fake error ${behavior.status}`, type: "fake_error" } }),
      );
      return;
    }
    if (behavior.kind === "drop") {
      response.writeHead(200, { "content-type": "text/event-stream" });
      response.flushHeaders();
      setTimeout(() => request.socket.destroy(), 20);
      return;
    }
    if (behavior.kind === "stall") {
      response.writeHead(200, { "content-type": "text/event-stream" });
      for (let i = 0; i < behavior.chunks; i++)
        response.write(
          anthropic
            ? `event: content_block_delta\ndata: ${JSON.stringify({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text: "tick " } })}\n\n`
            : `data: ${JSON.stringify({ id: "chatcmpl-fake", object: "chat.completion.chunk", created: 1, model: body?.model, choices: [{ index: 0, delta: { content: "tick " }, finish_reason: null }] })}\n\n`,
        );
      return;
    }
    if (behavior.kind === "huge") {
      response.writeHead(200, { "content-type": body?.stream ? "text/event-stream" : "application/json" });
      const piece = "x".repeat(64 * 1024);
      const write = (left: number): void => {
        if (left <= 0 || response.destroyed) return void response.end();
        const ok = response.write(body?.stream ? (left === behavior.bytes ? `data: ${piece}` : piece) : piece);
        if (ok) setImmediate(() => write(left - piece.length));
        else response.once("drain", () => write(left - piece.length));
      };
      write(behavior.bytes);
      return;
    }
    if (behavior.kind === "reply" && behavior.delayMs)
      await new Promise((resolve) => setTimeout(resolve, behavior.delayMs));
    const deltas =
      behavior.kind === "echo"
        ? chunksOf(lastUserText(body), 3)
        : chunksOf(behavior.text ?? (behavior.toolCall ? "" : "Hello from the cloud."), 6);
    const toolCall = behavior.kind === "reply" ? behavior.toolCall : undefined;
    const inputTokens = behavior.kind === "reply" ? behavior.inputTokens : undefined;
    const out = paced(response, behavior.kind === "reply" ? behavior.chunkDelayMs : undefined);
    if (anthropic) anthropicReply(out, body ?? {}, deltas, toolCall, inputTokens);
    else openAIReply(out, body ?? {}, deltas, toolCall, inputTokens);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  fake.url = `http://127.0.0.1:${port}`;
  fake.openaiBase = `${fake.url}/v1`;
  fake.close = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    });
  return fake;
}
