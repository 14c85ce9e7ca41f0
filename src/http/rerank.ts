import type { Context, Hono } from "hono";
import { z } from "zod";
import { InvalidRequestError } from "../core/errors.js";
import type { Gateway } from "../gateway/gateway.js";
import type { AppEnv } from "./appEnv.js";
import { guard } from "./guard.js";
import { parseBody } from "./validate.js";

/**
 * The Jina/Cohere rerank shape, as llama-server and LocalAI serve it: a query, documents (texts or `{text}`),
 * `top_n`, `return_documents` → results sorted by `relevance_score`, highest first.
 */
export const rerankSchema = z.looseObject({
  model: z.string().min(1).max(512),
  query: z.string().min(1),
  documents: z
    .array(z.union([z.string(), z.looseObject({ text: z.string() })]))
    .min(1)
    .max(1024),
  top_n: z.number().int().min(1).optional(),
  return_documents: z.boolean().optional(),
});

async function rerank(c: Context<AppEnv>, gateway: Gateway) {
  const body = parseBody(rerankSchema, await c.get("json")());
  const documents = body.documents.map((document) => (typeof document === "string" ? document : document.text));
  const empty = documents.findIndex((document) => document.length === 0);
  if (empty !== -1)
    throw new InvalidRequestError(`documents[${empty}] is empty; send the text to rank`, `documents[${empty}]`);
  const result = await gateway.rerank(
    { model: body.model, query: body.query, documents },
    c.get("context"),
    c.get("signal"),
  );
  const ranked = result.scores
    .map((score, index) => ({ index, relevance_score: score }))
    .sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index)
    .slice(0, body.top_n ?? documents.length);
  // Jina's default (and LocalAI's): the document's text comes back unless return_documents is false.
  const withDocuments = body.return_documents !== false;
  return c.json({
    object: "list",
    model: body.model,
    results: ranked.map((item) => ({
      ...item,
      ...(withDocuments ? { document: { text: documents[item.index] } } : {}),
    })),
    usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
  });
}

/** `POST /v1/rerank` and `POST /rerank` (llama-server's spellings); local models only. */
export function registerRerank(app: Hono<AppEnv>, gateway: Gateway): void {
  app.post("/v1/rerank", guard("key"), (c) => rerank(c, gateway));
  app.post("/rerank", guard("key"), (c) => rerank(c, gateway));
}
