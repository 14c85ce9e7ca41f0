import type { Hono } from "hono";
import { InvalidRequestError } from "../../core/errors.js";
import type { ImageFetcher } from "../../core/imageFetch.js";
import type { Gateway } from "../../gateway/gateway.js";
import type { AppEnv } from "../appEnv.js";
import { generatedBy, generateRoute } from "../generateRoute.js";
import { guard } from "../guard.js";
import { resolveImages } from "../images.js";
import { sseHeaders } from "../sse.js";
import { parseBody, refuseFields } from "../validate.js";
import { toChatRequest, toCompletionRequest } from "./decode.js";
import { chatEncoder, completionEncoder } from "./encode.js";
import { chatCompletionSchema, completionSchema, embeddingSchema, unsupportedChatFields } from "./schemas.js";

/** OpenAI's Chat Completions, Completions and Embeddings (GET /v1/models, shared with Anthropic: ../models.ts). */
export function registerOpenAIRoutes(app: Hono<AppEnv>, gateway: Gateway, images?: ImageFetcher): void {
  app.post(
    "/v1/chat/completions",
    guard("key"),
    generateRoute({
      parse: (json) => {
        const body = parseBody(chatCompletionSchema, json);
        refuseFields(body, unsupportedChatFields);
        return body;
      },
      streams: (body) => body.stream === true,
      encoder: chatEncoder,
      decode: async (body, c) => {
        const request = await resolveImages(toChatRequest(body), images, c.get("context"), c.get("signal"));
        return { request: { ...request, ...(body.stream ? {} : { wholeAnswer: true }) } };
      },
      events: generatedBy(gateway),
      streamHeaders: sseHeaders,
    }),
  );

  app.post(
    "/v1/completions",
    guard("key"),
    generateRoute({
      parse: (json) => parseBody(completionSchema, json),
      streams: (body) => body.stream === true,
      encoder: completionEncoder,
      decode: (body) => ({ request: { ...toCompletionRequest(body), ...(body.stream ? {} : { wholeAnswer: true }) } }),
      events: generatedBy(gateway),
      streamHeaders: sseHeaders,
    }),
  );

  app.post("/v1/embeddings", guard("key"), async (c) => {
    const body = parseBody(embeddingSchema, await c.get("json")());
    const input = typeof body.input === "string" ? [body.input] : body.input;
    const result = await gateway.embed({ model: body.model, input }, c.get("context"), c.get("signal"));
    const dimensions = result.vectors[0]?.length ?? 0;
    if (body.dimensions !== undefined && body.dimensions !== dimensions) {
      throw new InvalidRequestError(
        `this model's embeddings have ${dimensions} dimensions and cannot be shortened to ${body.dimensions}; leave out "dimensions"`,
        "dimensions",
      );
    }
    return c.json({
      object: "list",
      data: result.vectors.map((vector, index) => ({
        object: "embedding",
        index,
        embedding:
          body.encoding_format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector,
      })),
      model: body.model,
      usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
    });
  });
}
