import type { Hono } from "hono";
import { NotFoundError } from "../core/errors.js";
import type { Gateway } from "../gateway/gateway.js";
import { anthropicModel, anthropicModelPage, wantsAnthropicShape } from "./anthropic/models.js";
import type { AppEnv } from "./appEnv.js";
import { guard } from "./guard.js";

/**
 * GET /v1/models, a path OpenAI and Anthropic share: Anthropic's clients always send `anthropic-version`, which picks
 * its shape (its errors too: errorResponse.ts asks anthropic/errors.ts), OpenAI's otherwise.
 */
export function registerModelRoutes(app: Hono<AppEnv>, gateway: Gateway): void {
  app.get("/v1/models", guard("key"), async (c) => {
    const models = await gateway.listModels(c.get("context"));
    if (wantsAnthropicShape(c.req.raw.headers)) return c.json(anthropicModelPage(models, c.req.query()));
    return c.json({
      object: "list",
      data: models.map((model) => ({
        id: model.name,
        object: "model",
        created: model.created,
        owned_by: model.ownedBy,
      })),
    });
  });

  app.get("/v1/models/:id{.+}", guard("key"), async (c) => {
    const id = c.req.param("id");
    const models = await gateway.listModels(c.get("context"));
    if (wantsAnthropicShape(c.req.raw.headers)) return c.json(anthropicModel(models, id));
    const model = models.find((m) => m.name === id || m.name === `${id}:latest`);
    if (!model) throw new NotFoundError(`The model '${id}' does not exist`, "model_not_found");
    return c.json({ id: model.name, object: "model", created: model.created, owned_by: model.ownedBy });
  });
}
