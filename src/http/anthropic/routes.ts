import type { Hono } from "hono";
import type { ImageFetcher } from "../../core/imageFetch.js";
import type { Gateway } from "../../gateway/gateway.js";
import type { AppEnv } from "../appEnv.js";
import { generatedBy, generateRoute } from "../generateRoute.js";
import { guard } from "../guard.js";
import { resolveImages } from "../images.js";
import { sseHeaders } from "../sse.js";
import { parseBody } from "../validate.js";
import { toChatRequest, toCountRequest } from "./decode.js";
import { messageEncoder } from "./encode.js";
import { countTokensSchema, messagesSchema } from "./schemas.js";

/**
 * Anthropic's Messages API: POST /v1/messages (streamed or not) and POST /v1/messages/count_tokens. The
 * `x-api-key`, `anthropic-version` and `anthropic-beta` headers are accepted and not checked.
 */
export function registerAnthropicRoutes(app: Hono<AppEnv>, gateway: Gateway, images?: ImageFetcher): void {
  app.post(
    "/v1/messages",
    guard("key"),
    generateRoute({
      parse: (json) => parseBody(messagesSchema, json),
      streams: (body) => body.stream === true,
      encoder: messageEncoder,
      decode: async (body, c) => {
        const request = await resolveImages(toChatRequest(body), images, c.get("context"), c.get("signal"));
        return { request: { ...request, ...(body.stream ? {} : { wholeAnswer: true }) } };
      },
      events: generatedBy(gateway),
      streamHeaders: sseHeaders,
      // message_start carries input_tokens (the engine reports usage only at the end): counted beside the first token.
      countsPrompt: (request, c) => gateway.countTokens(request, c.get("context")),
    }),
  );

  app.post("/v1/messages/count_tokens", guard("key"), async (c) => {
    const body = parseBody(countTokensSchema, await c.get("json")());
    const request = await resolveImages(toCountRequest(body), images, c.get("context"), c.get("signal"));
    return c.json({ input_tokens: await gateway.countTokensRequest(request, c.get("context")) });
  });
}
