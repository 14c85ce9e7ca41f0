import type { Hono } from "hono";
import { type ChatEvent, type ChatRequest, foldChatEvents } from "../../core/chat.js";
import type { RequestContext } from "../../core/context.js";
import type { Gateway } from "../../gateway/gateway.js";
import type { AppEnv } from "../appEnv.js";
import { guard } from "../guard.js";
import { sseHeaders } from "../sse.js";
import { primeStream } from "../stream.js";
import { truncationHeaders, truncationOf } from "../truncation.js";
import { parseBody } from "../validate.js";
import { messageBody, messageId } from "./messageBody.js";
import { messageStream } from "./messageStream.js";
import { toChatRequest, toCountRequest } from "./requests.js";
import { countTokensSchema, messagesSchema } from "./schemas.js";

/**
 * Starts generating and counts the prompt at the same time, so message_start can carry input_tokens (the engine
 * reports usage only at the end) without delaying the first token. An early failure is thrown before any header.
 */
async function startStream(
  gateway: Gateway,
  request: ChatRequest,
  context: RequestContext,
  signal: AbortSignal,
): Promise<{ events: AsyncIterator<ChatEvent> & { first: ChatEvent | undefined }; inputTokens: number }> {
  const [events, counted] = await Promise.allSettled([
    primeStream(gateway.generate(request, context, signal)),
    gateway.countTokens(request, context),
  ]);
  if (events.status === "rejected") throw events.reason;
  if (counted.status === "rejected") {
    await events.value.return?.();
    throw counted.reason;
  }
  return { events: events.value, inputTokens: counted.value };
}

/**
 * Anthropic's Messages API: POST /v1/messages (streamed or not) and POST /v1/messages/count_tokens. The
 * `x-api-key`, `anthropic-version` and `anthropic-beta` headers are accepted and not checked.
 */
export function registerAnthropicRoutes(app: Hono<AppEnv>, gateway: Gateway): void {
  app.post("/v1/messages", guard("key"), async (c) => {
    const body = parseBody(messagesSchema, await c.get("json")());
    const request = toChatRequest(body);
    const id = messageId();
    if (!body.stream) {
      const events = gateway.generate({ ...request, wholeAnswer: true }, c.get("context"), c.get("signal"));
      const answer = await foldChatEvents(events);
      return c.json(messageBody(id, body.model, answer), 200, truncationHeaders(answer.truncation));
    }
    const { events, inputTokens } = await startStream(gateway, request, c.get("context"), c.get("signal"));
    return new Response(messageStream(events, { id, model: body.model, inputTokens }), {
      headers: { ...sseHeaders, ...truncationHeaders(truncationOf(events.first)) },
    });
  });

  app.post("/v1/messages/count_tokens", guard("key"), async (c) => {
    const body = parseBody(countTokensSchema, await c.get("json")());
    return c.json({ input_tokens: await gateway.countTokensRequest(toCountRequest(body), c.get("context")) });
  });
}
