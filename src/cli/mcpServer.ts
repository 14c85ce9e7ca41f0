import { randomUUID } from "node:crypto";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";
import { foldChatEvents } from "../core/chat.js";
import type { CallerKey, RequestContext } from "../core/context.js";
import { FreeholdError } from "../core/errors.js";
import type { Gateway } from "../gateway/gateway.js";
import { VERSION } from "../version.js";

/**
 * freehold as an MCP server: the owner's local models offered to MCP clients (desktop assistants, coding agents) as
 * three tools. Every call goes through the gateway under the key it was started with: model scopes, limits, the
 * ledger and the audit trail apply as for an HTTP request.
 */
export function createModelServer(gateway: Gateway, key: CallerKey | undefined): McpServer {
  const server = new McpServer(
    { name: "freehold", version: VERSION },
    { instructions: "Local models on this machine: ask one (ask), embed text (embed), see which exist (list_models)." },
  );
  const context = (tool: string): RequestContext => ({
    requestId: `mcp_${randomUUID().replaceAll("-", "")}`,
    api: "mcp",
    route: `mcp:${tool}`,
    ...(key ? { key } : {}),
  });
  server.registerTool(
    "ask",
    {
      title: "Ask a local model",
      description:
        "Sends a prompt to a model that runs on this machine and returns its answer. Nothing leaves the machine.",
      inputSchema: {
        model: z.string().min(1).max(512).describe("a model name from list_models"),
        prompt: z.string().min(1).max(1_000_000),
        system: z.string().max(100_000).optional().describe("instructions for the model"),
        max_tokens: z.number().int().min(1).max(32_768).optional(),
        temperature: z.number().min(0).max(2).optional(),
      },
    },
    ({ model, prompt, system, max_tokens, temperature }, extra) =>
      answer(async () => {
        const events = gateway.generate(
          {
            kind: "chat",
            model,
            messages: [
              ...(system ? [{ role: "system" as const, content: system }] : []),
              { role: "user", content: prompt },
            ],
            sampling: temperature !== undefined ? { temperature } : {},
            limits: max_tokens !== undefined ? { maxTokens: max_tokens } : {},
          },
          context("ask"),
          extra.signal,
        );
        const folded = await foldChatEvents(events);
        return {
          content: [{ type: "text", text: folded.text }],
          structuredContent: {
            text: folded.text,
            finish_reason: folded.finishReason,
            prompt_tokens: folded.usage.promptTokens,
            completion_tokens: folded.usage.completionTokens,
          },
        };
      }),
  );
  server.registerTool(
    "embed",
    {
      title: "Embed text with a local model",
      description: "Embedding vectors (normalised) for one or more texts, computed on this machine.",
      inputSchema: {
        model: z.string().min(1).max(512),
        input: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(256)]),
      },
    },
    ({ model, input }, extra) =>
      answer(async () => {
        const texts = typeof input === "string" ? [input] : input;
        const result = await gateway.embed({ model, input: texts }, context("embed"), extra.signal);
        const body = { vectors: result.vectors, prompt_tokens: result.promptTokens };
        return { content: [{ type: "text", text: JSON.stringify(body) }], structuredContent: body };
      }),
  );
  server.registerTool(
    "list_models",
    {
      title: "List local models",
      description: "The models this key may use.",
      annotations: { readOnlyHint: true },
    },
    () =>
      answer(async () => {
        const models = (await gateway.listModels(context("list_models"))).map((model) => ({
          name: model.name,
          context_length: model.contextLength,
        }));
        return { content: [{ type: "text", text: JSON.stringify(models) }], structuredContent: { models } };
      }),
  );
  return server;
}

/** A refusal or failure is the tool's error (the agent reads why and can act), not a protocol error. */
async function answer(run: () => Promise<CallToolResult>): Promise<CallToolResult> {
  try {
    return await run();
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const code = error instanceof FreeholdError ? ` (${error.code})` : "";
    return { isError: true, content: [{ type: "text", text: `${message}${code}` }] };
  }
}
