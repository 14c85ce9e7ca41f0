import { randomBytes } from "node:crypto";
import type { Usage } from "../../core/chat.js";

/** The Responses API's output items and events, as the assembler (encode.ts) builds them. */

/** `resp_…`, `msg_…`, `fc_…`: the Responses API's id style. */
export function responseItemId(prefix: string): string {
  return `${prefix}_${randomBytes(16).toString("hex")}`;
}

/** The fields a Response echoes from its request, and its identity; everything else the assembler fills in. */
export interface ResponseEnvelope {
  id: string;
  createdAt: number;
  model: string;
  echo: {
    instructions: string | null;
    max_output_tokens: number | null;
    parallel_tool_calls: boolean;
    temperature: number | null;
    text: { format: Record<string, unknown> };
    tool_choice: unknown;
    tools: Record<string, unknown>[];
    top_p: number | null;
    user?: string;
    metadata: Record<string, string>;
  };
}

export interface OutputText {
  type: "output_text";
  text: string;
  annotations: never[];
}

export type ItemStatus = "in_progress" | "completed" | "incomplete";

export interface MessageItem {
  type: "message";
  id: string;
  status: ItemStatus;
  role: "assistant";
  content: OutputText[];
}

export interface FunctionCallItem {
  type: "function_call";
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: ItemStatus;
}

export interface McpListToolsItem {
  type: "mcp_list_tools";
  id: string;
  server_label: string;
  tools: { name: string; description: string | null; input_schema: unknown; annotations: unknown }[];
  error?: string;
}

export interface McpCallItem {
  type: "mcp_call";
  id: string;
  server_label: string;
  name: string;
  arguments: string;
  output: string | null;
  error: string | null;
  approval_request_id: string | null;
  status: "in_progress" | "completed" | "failed";
}

export interface McpApprovalRequestItem {
  type: "mcp_approval_request";
  id: string;
  server_label: string;
  name: string;
  arguments: string;
}

/** A reasoning model's thinking, as OpenAI sends open-weight models' reasoning text (no summary is made). */
export interface ReasoningItem {
  type: "reasoning";
  id: string;
  summary: never[];
  content: { type: "reasoning_text"; text: string }[];
  status: ItemStatus;
}

export type OutputItem =
  | ReasoningItem
  | MessageItem
  | FunctionCallItem
  | McpListToolsItem
  | McpCallItem
  | McpApprovalRequestItem;

/** One Responses streaming event: its `type` names the SSE event; `sequence_number` is added when it is emitted. */
export type ResponsesEvent = { type: string } & Record<string, unknown>;

export function outputText(text: string): OutputText {
  return { type: "output_text", text, annotations: [] };
}

export function usageBody(usage: Usage) {
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: usage.cachedTokens ?? 0, cache_write_tokens: 0 },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}
