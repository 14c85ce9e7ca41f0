import { availableParallelism } from "node:os";
import type { Context, Hono } from "hono";
import type { ModelCatalog, ModelControl, ModelDescription, ModelSupply } from "../../core/catalog.js";
import type { RequestContext } from "../../core/context.js";
import { parseKeepAlive } from "../../core/duration.js";
import { FreeholdError } from "../../core/errors.js";
import type { Gateway } from "../../gateway/gateway.js";
import type { AppEnv } from "../appEnv.js";
import { generatedBy, generateRoute } from "../generateRoute.js";
import { guard } from "../guard.js";
import { ndjsonHeaders } from "../ndjson.js";
import { parseBody } from "../validate.js";
import { toChatRequest, toGenerateRequest } from "./decode.js";
import { chatEncoder, generateEncoder, nanoseconds } from "./encode.js";
import {
  chatSchema,
  copySchema,
  embedSchema,
  generateSchema,
  legacyEmbeddingsSchema,
  modelNameSchema,
} from "./schemas.js";
import { assertMayUnload, type LoadLimits, limitLoadSettings, loadOptionsHeader } from "./sharedModel.js";
import { registerOllamaSupplyRoutes } from "./supply.js";

/**
 * The Ollama release whose API freehold answers (docs.ollama.com's reference, checked in docs/compatibility.md):
 * what GET /api/version reports. Raise it when the Ollama surface is checked against a newer release.
 */
export const OLLAMA_API_LEVEL = "0.12.6";

export interface OllamaDependencies {
  gateway: Gateway;
  catalog: ModelCatalog;
  models: ModelControl;
  version: string;
  /** Pull and create; without it those routes answer 501. */
  supply?: ModelSupply;
  /** Most CPU threads a request's num_thread may ask for (default: this machine's CPUs). */
  maxThreads?: number;
}

/** The note header for ignored or clamped loading options (sharedModel.ts), when there are any. */
function notesHeader(notes: string[]): Record<string, string> {
  return notes.length > 0 ? { [loadOptionsHeader]: notes.join("; ") } : {};
}

function details(model: ModelDescription) {
  return {
    parent_model: "",
    format: "gguf",
    family: model.architecture,
    families: [model.architecture],
    parameter_size: model.parameterSize,
    quantization_level: model.quantization,
  };
}

function modelName(body: { model?: string | undefined; name?: string | undefined }): string {
  const name = body.model ?? body.name;
  if (!name)
    throw new FreeholdError("model is required", {
      code: "invalid_request",
      status: 400,
      type: "invalid_request_error",
      param: "model",
    });
  return name;
}

export function registerOllamaRoutes(app: Hono<AppEnv>, deps: OllamaDependencies): void {
  const { gateway, catalog, models } = deps;
  const limits: LoadLimits = {
    maxThreads: deps.maxThreads ?? availableParallelism(),
    trainedContext: async (model) => (await catalog.describe(model)).contextLength,
  };

  /** An empty prompt loads the model (or, with keep_alive 0, unloads it), as Ollama does. */
  async function loadOrUnload(model: string, keepAlive: number | string | undefined, context: RequestContext) {
    const keepAliveMs = keepAlive === undefined ? undefined : parseKeepAlive(keepAlive);
    if (keepAliveMs === 0) {
      assertMayUnload(model, context);
      await models.unload(model);
      return "unload";
    }
    // A non-admin key's keep_alive would pin or drop the model for everyone: it loads with the server's.
    await models.load(model, context.key && !context.key.admin ? undefined : keepAliveMs);
    return "load";
  }

  /** Answers a request with no prompt without generating: it loads the model, or with keep_alive 0 unloads it. */
  function loadShortcut<Body extends { model: string; keep_alive?: number | string | undefined }>(
    empty: (body: Body) => boolean,
    answer: Record<string, unknown>,
  ) {
    return async (body: Body, c: Context<AppEnv>) => {
      if (!empty(body)) return undefined;
      const reason = await loadOrUnload(body.model, body.keep_alive, c.get("context"));
      return c.json({
        model: body.model,
        created_at: new Date().toISOString(),
        ...answer,
        done_reason: reason,
        done: true,
      });
    };
  }

  app.post(
    "/api/chat",
    guard("key"),
    generateRoute({
      parse: (json) => parseBody(chatSchema, json),
      streams: (body) => body.stream !== false,
      encoder: chatEncoder,
      shortcut: loadShortcut((body) => !body.messages || body.messages.length === 0, {
        message: { role: "assistant", content: "" },
      }),
      decode: async (body, c) => {
        const { request, notes } = await limitLoadSettings(toChatRequest(body), c.get("context"), limits);
        return { request, headers: notesHeader(notes) };
      },
      events: generatedBy(gateway),
      streamHeaders: ndjsonHeaders,
    }),
  );

  app.post(
    "/api/generate",
    guard("key"),
    generateRoute({
      parse: (json) => parseBody(generateSchema, json),
      streams: (body) => body.stream !== false,
      encoder: generateEncoder,
      shortcut: loadShortcut((body) => !body.prompt && !body.system, { response: "" }),
      decode: async (body, c) => {
        const { request, notes } = await limitLoadSettings(toGenerateRequest(body), c.get("context"), limits);
        return { request, headers: notesHeader(notes) };
      },
      events: generatedBy(gateway),
      streamHeaders: ndjsonHeaders,
    }),
  );

  app.post("/api/embed", guard("key"), async (c) => {
    const body = parseBody(embedSchema, await c.get("json")());
    const started = performance.now();
    const input = typeof body.input === "string" ? [body.input] : body.input;
    const result = await gateway.embed({ model: body.model, input }, c.get("context"), c.get("signal"));
    return c.json({
      model: body.model,
      embeddings: result.vectors,
      total_duration: nanoseconds(performance.now() - started),
      load_duration: 0,
      prompt_eval_count: result.promptTokens,
    });
  });

  app.post("/api/embeddings", guard("key"), async (c) => {
    const body = parseBody(legacyEmbeddingsSchema, await c.get("json")());
    if (body.prompt === "") return c.json({ embedding: [] });
    const result = await gateway.embed({ model: body.model, input: [body.prompt] }, c.get("context"), c.get("signal"));
    return c.json({ embedding: result.vectors[0] ?? [] });
  });

  app.get("/api/tags", guard("key"), async (c) => {
    const list = await catalog.list();
    return c.json({
      models: list.map((model) => ({
        name: model.name,
        model: model.name,
        modified_at: model.modifiedAt.toISOString(),
        size: model.size,
        digest: model.digest.replace(/^sha256:/, ""),
        details: details(model),
      })),
    });
  });

  app.post("/api/show", guard("key"), async (c) => {
    const body = parseBody(modelNameSchema, await c.get("json")());
    const model = await catalog.describe(modelName(body));
    return c.json({
      license: model.license ?? "",
      modelfile: model.modelfile ?? `# this model is ${model.name}, with no profile\nfrom: ${model.name}\n`,
      parameters: model.profileParameters ?? "",
      template: model.profile?.template ?? model.chatTemplate ?? "",
      ...(model.profile?.system !== undefined ? { system: model.profile.system } : {}),
      details: details(model),
      // freehold's: the tool format the model's template gives (docs/models.md › Tool calls), beside its facts.
      model_info: { ...model.facts, ...(model.toolFormat ? { "freehold.tool_format": model.toolFormat } : {}) },
      capabilities: ["completion", "embedding", ...(model.projector ? ["vision"] : [])],
      modified_at: model.modifiedAt.toISOString(),
    });
  });

  app.post("/api/copy", guard("admin"), async (c) => {
    const body = parseBody(copySchema, await c.get("json")());
    await catalog.copy(body.source, body.destination);
    return c.body(null, 200);
  });

  app.delete("/api/delete", guard("admin"), async (c) => {
    const body = parseBody(modelNameSchema, await c.get("json")());
    const name = modelName(body);
    await models.unload(name).catch(() => false);
    await catalog.remove(name);
    return c.body(null, 200);
  });

  // Ollama clients gate features on this number (one desktop extension needs >= 0.6.4), so it is the Ollama API
  // level freehold implements; freehold's own version rides in another field and a header.
  app.get("/api/version", guard("public"), (c) => {
    c.header("x-freehold-version", deps.version);
    return c.json({ version: OLLAMA_API_LEVEL, freehold: deps.version });
  });

  if (deps.supply) registerOllamaSupplyRoutes(app, deps.supply);
  for (const path of deps.supply ? ["/api/push"] : ["/api/pull", "/api/create", "/api/push"]) {
    app.post(path, guard("admin"), (c) =>
      c.json(
        {
          error: `${path} is not available yet in freehold: add models with \`freehold import FILE --name NAME\` (pulling from a hub comes in a later release)`,
        },
        501,
      ),
    );
  }
}
