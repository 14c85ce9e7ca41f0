import { availableParallelism } from "node:os";
import type { Hono } from "hono";
import type { ModelCatalog, ModelControl, ModelDescription, ModelSupply } from "../../core/catalog.js";
import {
  type ChatEvent,
  type FinishReason,
  foldChatEvents,
  type TimingInfo,
  type TokenLogprob,
  type ToolCall,
  type Usage,
} from "../../core/chat.js";
import type { RequestContext } from "../../core/context.js";
import { parseKeepAlive } from "../../core/duration.js";
import { FreeholdError, withoutPaths } from "../../core/errors.js";
import type { Gateway } from "../../gateway/gateway.js";
import type { AppEnv } from "../appEnv.js";
import { guard } from "../guard.js";
import { ndjsonHeaders, ndjsonStream } from "../ndjson.js";
import { primeStream } from "../stream.js";
import { truncationField, truncationHeaders, truncationOf } from "../truncation.js";
import { parseBody } from "../validate.js";
import { ollamaErrorBody } from "./errors.js";
import { toChatRequest, toGenerateRequest } from "./requests.js";
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

const doneReasons: Record<FinishReason, string> = {
  stop: "stop",
  length: "length",
  "tool-calls": "stop",
  error: "stop",
  cancelled: "stop",
};

const nanoseconds = (ms: number) => Math.round(ms * 1e6);

/** Ollama's closing statistics: counts and durations in nanoseconds. */
function stats(started: number, usage: Usage | undefined, timing: TimingInfo | undefined) {
  return {
    total_duration: nanoseconds(performance.now() - started),
    load_duration: 0,
    prompt_eval_count: usage?.promptTokens ?? 0,
    prompt_eval_duration: nanoseconds(timing?.promptMs ?? 0),
    eval_count: usage?.completionTokens ?? 0,
    eval_duration: nanoseconds(timing?.generationMs ?? 0),
  };
}

/**
 * Streams one answer as Ollama's NDJSON: a line per text piece, then a closing line with done, done_reason and
 * statistics. `piece` and `closing` shape /api/chat's `message` or /api/generate's `response`.
 */
function encodeAnswer(
  events: AsyncIterator<ChatEvent>,
  model: string,
  started: number,
  piece: (text: string) => Record<string, unknown>,
  thought: (text: string) => Record<string, unknown>,
): ReadableStream<Uint8Array> {
  let usage: Usage | undefined;
  let timing: TimingInfo | undefined;
  return ndjsonStream(
    events,
    (event) => {
      const createdAt = new Date().toISOString();
      switch (event.type) {
        case "text-delta":
          return [
            { model, created_at: createdAt, ...piece(event.text), ...logprobsField(event.logprobs), done: false },
          ];
        case "reasoning":
          return [{ model, created_at: createdAt, ...thought(event.text), done: false }];
        case "tool-call":
          return [
            {
              model,
              created_at: createdAt,
              message: { role: "assistant", content: "", tool_calls: [ollamaToolCall(event.call)] },
              done: false,
            },
          ];
        case "usage":
          usage = event.usage;
          timing = event.timing;
          return [];
        case "truncated":
          // Said by the x-freehold-truncated header before the stream starts.
          return [];
        case "finish":
          return [
            {
              model,
              created_at: createdAt,
              ...piece(""),
              done: true,
              done_reason: doneReasons[event.reason],
              ...stats(started, usage, timing),
            },
          ];
        case "error":
          return [{ error: withoutPaths(event.error.message, event.error.status >= 500) }];
      }
    },
    (error) => ollamaErrorBody(error).body,
  );
}

/** Ollama's `logprobs`: one entry per token, each with its `top_logprobs`. */
function logprobsField(entries: TokenLogprob[] | undefined) {
  if (!entries) return {};
  const entry = (item: Omit<TokenLogprob, "top">) => ({ token: item.token, logprob: item.logprob, bytes: item.bytes });
  return { logprobs: entries.map((item) => ({ ...entry(item), top_logprobs: item.top.map(entry) })) };
}

/** Ollama sends a call's arguments as an object, not a JSON text. */
function ollamaToolCall(call: ToolCall) {
  return { function: { name: call.name, arguments: JSON.parse(call.arguments || "{}") as unknown } };
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

  app.post("/api/chat", guard("key"), async (c) => {
    const body = parseBody(chatSchema, await c.get("json")());
    const started = performance.now();
    if (!body.messages || body.messages.length === 0) {
      const reason = await loadOrUnload(body.model, body.keep_alive, c.get("context"));
      return c.json({
        model: body.model,
        created_at: new Date().toISOString(),
        message: { role: "assistant", content: "" },
        done_reason: reason,
        done: true,
      });
    }
    const { request, notes } = await limitLoadSettings(toChatRequest(body), c.get("context"), limits);
    const events = gateway.generate(request, c.get("context"), c.get("signal"));
    if (body.stream === false) {
      const answer = await foldChatEvents(events);
      return c.json(
        {
          model: body.model,
          created_at: new Date().toISOString(),
          message: {
            role: "assistant",
            content: answer.text,
            ...(answer.reasoning ? { thinking: answer.reasoning } : {}),
            ...(answer.toolCalls.length > 0 ? { tool_calls: answer.toolCalls.map(ollamaToolCall) } : {}),
          },
          done_reason: doneReasons[answer.finishReason],
          done: true,
          ...stats(started, answer.usage, answer.timing),
          ...logprobsField(answer.logprobs),
          ...truncationField(answer.truncation),
        },
        200,
        { ...notesHeader(notes), ...truncationHeaders(answer.truncation) },
      );
    }
    const iterator = await primeStream(events);
    return new Response(
      encodeAnswer(
        iterator,
        body.model,
        started,
        (text) => ({ message: { role: "assistant", content: text } }),
        (text) => ({ message: { role: "assistant", content: "", thinking: text } }),
      ),
      { headers: { ...ndjsonHeaders, ...notesHeader(notes), ...truncationHeaders(truncationOf(iterator.first)) } },
    );
  });

  app.post("/api/generate", guard("key"), async (c) => {
    const body = parseBody(generateSchema, await c.get("json")());
    const started = performance.now();
    if (!body.prompt && !body.system) {
      const reason = await loadOrUnload(body.model, body.keep_alive, c.get("context"));
      return c.json({
        model: body.model,
        created_at: new Date().toISOString(),
        response: "",
        done_reason: reason,
        done: true,
      });
    }
    const { request, notes } = await limitLoadSettings(toGenerateRequest(body), c.get("context"), limits);
    const events = gateway.generate(request, c.get("context"), c.get("signal"));
    if (body.stream === false) {
      const answer = await foldChatEvents(events);
      return c.json(
        {
          model: body.model,
          created_at: new Date().toISOString(),
          response: answer.text,
          ...(answer.reasoning ? { thinking: answer.reasoning } : {}),
          done_reason: doneReasons[answer.finishReason],
          done: true,
          ...stats(started, answer.usage, answer.timing),
          ...logprobsField(answer.logprobs),
          ...truncationField(answer.truncation),
        },
        200,
        { ...notesHeader(notes), ...truncationHeaders(answer.truncation) },
      );
    }
    const iterator = await primeStream(events);
    return new Response(
      encodeAnswer(
        iterator,
        body.model,
        started,
        (text) => ({ response: text }),
        (text) => ({ response: "", thinking: text }),
      ),
      { headers: { ...ndjsonHeaders, ...notesHeader(notes), ...truncationHeaders(truncationOf(iterator.first)) } },
    );
  });

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
      model_info: model.facts,
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
