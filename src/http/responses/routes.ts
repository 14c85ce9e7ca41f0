import type { Hono } from "hono";
import type { ImageFetcher } from "../../core/imageFetch.js";
import type { Gateway } from "../../gateway/gateway.js";
import type { ToolLoopEvent } from "../../gateway/toolLoop.js";
import type { AppEnv } from "../appEnv.js";
import { generateRoute } from "../generateRoute.js";
import { guard } from "../guard.js";
import { resolveImages } from "../images.js";
import { sseHeaders } from "../sse.js";
import { parseBody, refuseFields } from "../validate.js";
import { toResponsesChatRequest } from "./decode.js";
import { responsesEncoder } from "./encode.js";
import { mcpPlan } from "./mcp.js";
import { responseCreateSchema, statefulResponseFields } from "./schemas.js";

/**
 * `POST /v1/responses`, stateless: the whole conversation comes in `input` every time; nothing is stored, so
 * `previous_response_id`, `conversation` and `background` are refused.
 */
export function registerResponsesRoutes(app: Hono<AppEnv>, gateway: Gateway, images?: ImageFetcher): void {
  app.post(
    "/v1/responses",
    guard("key"),
    generateRoute({
      parse: (json) => {
        const body = parseBody(responseCreateSchema, json);
        refuseFields(body, statefulResponseFields);
        return body;
      },
      streams: (body) => body.stream === true,
      encoder: responsesEncoder,
      decode: async (body, c) => ({
        request: await resolveImages(toResponsesChatRequest(body), images, c.get("context"), c.get("signal")),
      }),
      events: (request, body, c): AsyncIterable<ToolLoopEvent> => {
        const plan = mcpPlan(body, gateway.tools?.host);
        // MCP tools of the request, or of the route: their calls show as mcp_* items (other APIs see only the answer).
        return plan || gateway.tools?.host.mayAttach(body.model)
          ? gateway.generateWithTools(request, c.get("context"), plan ?? { toolsets: [] }, c.get("signal"))
          : gateway.generate(request, c.get("context"), c.get("signal"));
      },
      streamHeaders: sseHeaders,
    }),
  );
}
