import type { Hono } from "hono";
import type { Gateway } from "../../gateway/gateway.js";
import type { AppEnv } from "../appEnv.js";
import { generatedBy, generateRoute } from "../generateRoute.js";
import { guard } from "../guard.js";
import { sseHeaders } from "../sse.js";
import { parseBody } from "../validate.js";
import { toChatRequest, toCountRequest } from "./decode.js";
import { messageEncoder } from "./encode.js";
import { countTokensSchema, messagesSchema } from "./schemas.js";

/**
 * Anthropic's Messages API: POST /v1/messages (streamed or not) and POST /v1/messages/count_tokens. The
 * `x-api-key`, `anthropic-version` and `anthropic-beta` headers are accepted and not checked.
 */
export function registerAnthropicRoutes(app: Hono<AppEnv>, gateway: Gateway): void {
  app.post(
    "/v1/messages",
    guard("key"),
    generateRoute({
      parse: (json) => parseBody(messagesSchema, json),
      streams: (body) => body.stream === true,
      encoder: messageEncoder,
      decode: (body) => ({ request: { ...toChatRequest(body), ...(body.stream ? {} : { wholeAnswer: true }) } }),
      events: generatedBy(gateway),
      streamHeaders: sseHeaders,
      // message_start carries input_tokens (the engine reports usage only at the end): counted beside the first token.
      countsPrompt: (request, c) => gateway.countTokens(request, c.get("context")),
    }),
  );

  app.post("/v1/messages/count_tokens", guard("key"), async (c) => {
    const body = parseBody(countTokensSchema, await c.get("json")());
    return c.json({ input_tokens: await gateway.countTokensRequest(toCountRequest(body), c.get("context")) });
  });
}
