import type { Hono } from "hono";
import { z } from "zod";
import type { ModelSupply, SupplyProgress } from "../../core/catalog.js";
import { Channel } from "../../core/channel.js";
import { InvalidRequestError } from "../../core/errors.js";
import type { AppEnv } from "../appEnv.js";
import { guard } from "../guard.js";
import { ndjsonHeaders, ndjsonStream } from "../ndjson.js";
import { primeStream } from "../stream.js";
import { parseBody } from "../validate.js";
import { ollamaErrorBody } from "./errors.js";

const nameField = z.string().min(1).max(512);

const pullSchema = z.object({
  model: nameField.optional(),
  name: nameField.optional(),
  insecure: z.boolean().optional(),
  stream: z.boolean().optional(),
});

const createSchema = z.object({
  model: nameField.optional(),
  name: nameField.optional(),
  /** The older API: the whole Modelfile as text. */
  modelfile: z
    .string()
    .max(1024 * 1024)
    .optional(),
  from: z.string().min(1).max(512).optional(),
  system: z.string().optional(),
  template: z.string().optional(),
  license: z.union([z.string(), z.array(z.string())]).optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  messages: z.array(z.object({ role: z.string(), content: z.string() })).optional(),
  /** freehold's own: MCP servers the profile attaches (names under mcp_servers in freehold.yaml; docs/mcp.md). */
  mcp: z.array(z.string()).max(16).optional(),
  stream: z.boolean().optional(),
  quantize: z.string().optional(),
  files: z.record(z.string(), z.string()).optional(),
  adapters: z.record(z.string(), z.string()).optional(),
});

function requiredName(body: { model?: string | undefined; name?: string | undefined }, field = "model"): string {
  const name = body.model ?? body.name;
  if (!name) parseBody(z.object({ [field]: nameField }), {});
  return name!;
}

/** Progress as NDJSON lines (a line per change, at most every 100 ms per file), or one object with stream:false. */
async function progressResponse(
  run: (onProgress: (progress: SupplyProgress) => void) => Promise<void>,
  stream: boolean,
): Promise<Response> {
  if (!stream) {
    await run(() => undefined);
    return Response.json({ status: "success" });
  }
  const channel = new Channel<SupplyProgress>();
  const lastSent = new Map<string, number>();
  const onProgress = (progress: SupplyProgress) => {
    const now = performance.now();
    const done = progress.total === undefined || progress.completed === progress.total;
    if (!done && now - (lastSent.get(progress.status) ?? -Infinity) < 100) return;
    lastSent.set(progress.status, now);
    channel.push(progress);
  };
  run(onProgress).then(
    () => channel.close(),
    (error: unknown) => channel.fail(error),
  );
  const iterator = await primeStream(channel);
  return new Response(
    ndjsonStream(
      iterator,
      (progress) => [progress],
      (error) => ollamaErrorBody(error).body,
    ),
    { headers: ndjsonHeaders },
  );
}

/** POST /api/pull (from Hugging Face) and POST /api/create (profiles), with Ollama's NDJSON progress. */
export function registerOllamaSupplyRoutes(app: Hono<AppEnv>, supply: ModelSupply): void {
  app.post("/api/pull", guard("admin"), async (c) => {
    const body = parseBody(pullSchema, await c.get("json")());
    const reference = requiredName(body);
    return progressResponse((onProgress) => supply.pull(reference, onProgress, c.get("signal")), body.stream !== false);
  });

  app.post("/api/create", guard("admin"), async (c) => {
    const body = parseBody(createSchema, await c.get("json")());
    const name = requiredName(body);
    if (body.quantize !== undefined) parseBody(z.object({ quantize: z.undefined() }), { quantize: body.quantize });
    if (body.files !== undefined || body.adapters !== undefined) {
      parseBody(z.object({ files: z.undefined(), adapters: z.undefined() }), {
        files: body.files,
        adapters: body.adapters,
      });
    }
    // Ollama's Modelfile text has no MCP instruction: servers come with the fields form, never dropped silently.
    if (body.mcp !== undefined && body.modelfile !== undefined && body.from === undefined)
      throw new InvalidRequestError(
        "mcp goes with the fields form of a profile (from, system, …, mcp), not with modelfile; send from instead of modelfile",
        "mcp",
      );
    const { model: _model, name: _name, stream, modelfile, quantize: _quantize, ...fields } = body;
    const license = Array.isArray(fields.license) ? fields.license.join("\n") : fields.license;
    const input =
      modelfile !== undefined && fields.from === undefined
        ? { modelfile }
        : { fields: { ...fields, ...(license !== undefined ? { license } : {}) } };
    return progressResponse((onProgress) => supply.create(name, input, onProgress), stream !== false);
  });
}
