import type { McpEvent } from "../../gateway/toolLoop.js";
import {
  type McpApprovalRequestItem,
  type McpCallItem,
  type McpListToolsItem,
  type OutputItem,
  type ResponsesEvent,
  responseItemId,
} from "./items.js";

/**
 * MCP items with OpenAI's events: a list, a call (in progress, its arguments, then completed or failed), a request.
 * `output` is the Response's item list (an item is added or updated in place); `emit` numbers each event.
 */
export function mcpItemEvents(
  event: McpEvent,
  output: OutputItem[],
  emit: (event: ResponsesEvent) => ResponsesEvent,
): ResponsesEvent[] {
  switch (event.type) {
    case "mcp-list-tools": {
      const item: McpListToolsItem = {
        type: "mcp_list_tools",
        id: responseItemId("mcpl"),
        server_label: event.server,
        tools: event.tools.map((tool) => ({
          name: tool.name,
          description: tool.description ?? null,
          input_schema: tool.inputSchema,
          annotations: tool.readOnly ? { read_only: true } : null,
        })),
        ...(event.error !== undefined ? { error: event.error } : {}),
      };
      const index = output.push(item) - 1;
      const location = { item_id: item.id, output_index: index };
      return [
        emit({ type: "response.output_item.added", output_index: index, item: { ...item, tools: [] } }),
        emit({ type: "response.mcp_list_tools.in_progress", ...location }),
        ...ended("mcp_list_tools", Boolean(event.error), item, index, emit),
      ];
    }
    case "mcp-call-start": {
      const item: McpCallItem = {
        type: "mcp_call",
        id: event.id,
        server_label: event.server,
        name: event.name,
        arguments: event.arguments,
        output: null,
        error: null,
        approval_request_id: null,
        status: "in_progress",
      };
      const index = output.push(item) - 1;
      const location = { item_id: item.id, output_index: index };
      return [
        emit({ type: "response.output_item.added", output_index: index, item: { ...item, arguments: "" } }),
        emit({ type: "response.mcp_call.in_progress", ...location }),
        emit({ type: "response.mcp_call_arguments.delta", ...location, delta: event.arguments }),
        emit({ type: "response.mcp_call_arguments.done", ...location, arguments: event.arguments }),
      ];
    }
    case "mcp-call": {
      const index = output.findIndex((item) => item.id === event.id);
      const item = output[index] as McpCallItem | undefined;
      if (!item) return [];
      item.output = event.output ?? null;
      item.error = event.error ?? null;
      item.approval_request_id = event.approvalRequestId ?? null;
      item.status = event.error !== undefined ? "failed" : "completed";
      return ended("mcp_call", event.error !== undefined, item, index, emit);
    }
    case "mcp-approval-request": {
      const item: McpApprovalRequestItem = {
        type: "mcp_approval_request",
        id: event.id,
        server_label: event.server,
        name: event.name,
        arguments: event.arguments,
      };
      const index = output.push(item) - 1;
      return [
        emit({ type: "response.output_item.added", output_index: index, item: structuredClone(item) }),
        emit({ type: "response.output_item.done", output_index: index, item: structuredClone(item) }),
      ];
    }
    default:
      return event satisfies never;
  }
}

/** An item's last two events: its own completed (or failed) event, then the output item done with its final state. */
function ended(
  kind: "mcp_list_tools" | "mcp_call",
  failed: boolean,
  item: McpListToolsItem | McpCallItem,
  index: number,
  emit: (event: ResponsesEvent) => ResponsesEvent,
): ResponsesEvent[] {
  return [
    emit({ type: `response.${kind}.${failed ? "failed" : "completed"}`, item_id: item.id, output_index: index }),
    emit({ type: "response.output_item.done", output_index: index, item: structuredClone(item) }),
  ];
}
