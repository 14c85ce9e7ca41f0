import { z } from "zod";
import type { ModelInfo } from "../../core/chat.js";
import { NotFoundError } from "../../core/errors.js";
import { parseBody } from "../validate.js";

/**
 * Anthropic's Models API shares its path with OpenAI's (GET /v1/models). Anthropic's clients always send an
 * `anthropic-version` header, so that header picks this shape.
 */
export function wantsAnthropicShape(headers: Headers): boolean {
  return headers.get("anthropic-version") !== null;
}

const listQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  after_id: z.string().min(1).max(512).optional(),
  before_id: z.string().min(1).max(512).optional(),
});

function modelInfo(model: ModelInfo) {
  return {
    type: "model" as const,
    id: model.name,
    display_name: model.name,
    created_at: new Date(model.created * 1000).toISOString(),
    capabilities: null,
    deprecated_at: null,
    lifecycle: "active" as const,
    line: null,
    max_input_tokens: model.contextLength,
    max_tokens: model.contextLength,
    retires_at: null,
  };
}

/** A page of models: newest first, as Anthropic lists them; `after_id`/`before_id` are cursors, `limit` 1–1000. */
export function anthropicModelPage(models: ModelInfo[], query: Record<string, string>) {
  const { limit = 20, after_id: afterId, before_id: beforeId } = parseBody(listQuery, query);
  const sorted = [...models].sort((a, b) => b.created - a.created || a.name.localeCompare(b.name));
  const cursor = (id: string, field: string) => {
    const index = sorted.findIndex((model) => model.name === id);
    if (index === -1) throw new NotFoundError(`${field} "${id}" is not a model on this server`, "model_not_found");
    return index;
  };
  let page: ModelInfo[];
  let hasMore: boolean;
  if (beforeId !== undefined) {
    const end = cursor(beforeId, "before_id");
    page = sorted.slice(Math.max(0, end - limit), end);
    hasMore = end - limit > 0;
  } else {
    const start = afterId !== undefined ? cursor(afterId, "after_id") + 1 : 0;
    page = sorted.slice(start, start + limit);
    hasMore = start + limit < sorted.length;
  }
  return {
    data: page.map(modelInfo),
    has_more: hasMore,
    first_id: page[0]?.name ?? null,
    last_id: page.at(-1)?.name ?? null,
  };
}

export function anthropicModel(models: ModelInfo[], id: string) {
  const model = models.find((m) => m.name === id || m.name === `${id}:latest`);
  if (!model) throw new NotFoundError(`model: ${id}`, "model_not_found");
  return modelInfo(model);
}
