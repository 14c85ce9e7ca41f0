import { randomBytes } from "node:crypto";
import type { ChatEvent, FinishReason, ToolCall, Usage } from "../../core/chat.js";
import { errorFromEvent } from "../../core/errors.js";
import type { McpEvent, ToolLoopEvent } from "../../gateway/toolLoop.js";
import { textStream } from "../textStream.js";
import { openAIErrorBody } from "./errors.js";

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

interface OutputText {
  type: "output_text";
  text: string;
  annotations: never[];
}

type ItemStatus = "in_progress" | "completed" | "incomplete";

interface MessageItem {
  type: "message";
  id: string;
  status: ItemStatus;
  role: "assistant";
  content: OutputText[];
}

interface FunctionCallItem {
  type: "function_call";
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: ItemStatus;
}

interface McpListToolsItem {
  type: "mcp_list_tools";
  id: string;
  server_label: string;
  tools: { name: string; description: string | null; input_schema: unknown; annotations: unknown }[];
  error?: string;
}

interface McpCallItem {
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

interface McpApprovalRequestItem {
  type: "mcp_approval_request";
  id: string;
  server_label: string;
  name: string;
  arguments: string;
}

/** A reasoning model's thinking, as OpenAI sends open-weight models' reasoning text (no summary is made). */
interface ReasoningItem {
  type: "reasoning";
  id: string;
  summary: never[];
  content: { type: "reasoning_text"; text: string }[];
  status: ItemStatus;
}

type OutputItem =
  | ReasoningItem
  | MessageItem
  | FunctionCallItem
  | McpListToolsItem
  | McpCallItem
  | McpApprovalRequestItem;

/** One Responses streaming event: its `type` names the SSE event; `sequence_number` is added when it is emitted. */
export type ResponsesEvent = { type: string } & Record<string, unknown>;

function outputText(text: string): OutputText {
  return { type: "output_text", text, annotations: [] };
}

function usageBody(usage: Usage) {
  return {
    input_tokens: usage.promptTokens,
    input_tokens_details: { cached_tokens: usage.cachedTokens ?? 0, cache_write_tokens: 0 },
    output_tokens: usage.completionTokens,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

/**
 * Turns the internal event stream into the Responses API's: output items (a message for text, one function_call per
 * call, in the order they happen), their lifecycle events, and the Response object itself. The streamed route sends
 * every event it returns; the non-streamed route pushes the same events and answers `response()`, so both agree.
 */
export class ResponseAssembler {
  private sequence = 0;
  private started = false;
  private ended = false;
  private readonly output: OutputItem[] = [];
  private message: MessageItem | undefined;
  private reasoning: ReasoningItem | undefined;
  private usage: Usage | undefined;
  private finishReason: FinishReason = "stop";
  private completedAt: number | null = null;

  constructor(private readonly envelope: ResponseEnvelope) {}

  /** The events one internal event becomes (none after the answer ended or failed). */
  push(event: ToolLoopEvent): ResponsesEvent[] {
    if (this.ended) return [];
    const events = this.start();
    if (event.type !== "reasoning") events.push(...this.closeReasoning());
    if (event.type.startsWith("mcp-")) {
      events.push(...this.closeMessage("completed"), ...this.pushMcp(event as McpEvent));
      return events;
    }
    event = event as ChatEvent;
    switch (event.type) {
      case "text-delta":
        if (event.text) events.push(...this.appendText(event.text));
        break;
      case "reasoning":
        if (event.text) events.push(...this.closeMessage("completed"), ...this.appendReasoning(event.text));
        break;
      case "tool-call":
        events.push(...this.closeMessage("completed"), ...this.addCall(event.call));
        break;
      case "usage":
        this.usage = event.usage;
        break;
      case "truncated":
        // Said by the x-freehold-truncated header before the stream starts.
        break;
      case "finish":
        this.finishReason = event.reason;
        break;
      case "error":
        events.push(this.error(errorFromEvent(event.error)));
        break;
      default:
        event satisfies never;
    }
    return events;
  }

  /** Closes what is open and sends the final Response (`response.completed`, or `response.incomplete` when cut). */
  end(): ResponsesEvent[] {
    if (this.ended) return [];
    const events = this.start();
    const incomplete = this.finishReason === "length";
    events.push(...this.closeReasoning());
    // An answer with neither text nor calls is still an (empty) message, as OpenAI answers.
    if (this.output.every((item) => item.type === "reasoning")) events.push(...this.appendText(""));
    events.push(...this.closeMessage(incomplete ? "incomplete" : "completed"));
    this.ended = true;
    this.completedAt = Math.floor(Date.now() / 1000);
    events.push(
      this.emit({ type: incomplete ? "response.incomplete" : "response.completed", response: this.response() }),
    );
    return events;
  }

  /** An `error` event; the answer ends with it. */
  error(error: unknown): ResponsesEvent {
    this.ended = true;
    const { body } = openAIErrorBody(error);
    return this.emit({ type: "error", code: body.error.code, message: body.error.message, param: body.error.param });
  }

  /** The Response object as it stands: in progress until `end()`, then completed or incomplete. */
  response(): Record<string, unknown> {
    const { echo } = this.envelope;
    const done = this.completedAt !== null;
    const incomplete = done && this.finishReason === "length";
    return {
      id: this.envelope.id,
      object: "response",
      created_at: this.envelope.createdAt,
      status: done ? (incomplete ? "incomplete" : "completed") : "in_progress",
      background: false,
      completed_at: this.completedAt,
      error: null,
      incomplete_details: incomplete ? { reason: "max_output_tokens" } : null,
      instructions: echo.instructions,
      max_output_tokens: echo.max_output_tokens,
      model: this.envelope.model,
      output: done ? structuredClone(this.output) : [],
      parallel_tool_calls: echo.parallel_tool_calls,
      previous_response_id: null,
      temperature: echo.temperature,
      text: echo.text,
      tool_choice: echo.tool_choice,
      tools: echo.tools,
      top_p: echo.top_p,
      truncation: "disabled",
      ...(done && this.usage ? { usage: usageBody(this.usage) } : {}),
      ...(echo.user !== undefined ? { user: echo.user } : {}),
      metadata: echo.metadata,
    };
  }

  private emit(event: ResponsesEvent): ResponsesEvent {
    return { ...event, sequence_number: this.sequence++ };
  }

  private start(): ResponsesEvent[] {
    if (this.started) return [];
    this.started = true;
    return [
      this.emit({ type: "response.created", response: this.response() }),
      this.emit({ type: "response.in_progress", response: this.response() }),
    ];
  }

  private appendText(text: string): ResponsesEvent[] {
    const events: ResponsesEvent[] = [];
    let message = this.message;
    if (!message) {
      message = { type: "message", id: responseItemId("msg"), status: "in_progress", role: "assistant", content: [] };
      this.message = message;
      this.output.push(message);
      const location = { item_id: message.id, output_index: this.output.length - 1, content_index: 0 };
      events.push(
        this.emit({
          type: "response.output_item.added",
          output_index: location.output_index,
          item: structuredClone(message),
        }),
        this.emit({ type: "response.content_part.added", ...location, part: outputText("") }),
      );
      message.content.push(outputText(""));
    }
    if (text) {
      message.content[0]!.text += text;
      events.push(
        this.emit({
          type: "response.output_text.delta",
          item_id: message.id,
          output_index: this.output.length - 1,
          content_index: 0,
          delta: text,
          logprobs: [],
        }),
      );
    }
    return events;
  }

  private appendReasoning(text: string): ResponsesEvent[] {
    const events: ResponsesEvent[] = [];
    let item = this.reasoning;
    if (!item) {
      item = { type: "reasoning", id: responseItemId("rs"), summary: [], content: [], status: "in_progress" };
      this.reasoning = item;
      this.output.push(item);
      events.push(
        this.emit({
          type: "response.output_item.added",
          output_index: this.output.length - 1,
          item: structuredClone(item),
        }),
      );
      item.content.push({ type: "reasoning_text", text: "" });
    }
    item.content[0]!.text += text;
    events.push(
      this.emit({
        type: "response.reasoning_text.delta",
        item_id: item.id,
        output_index: this.output.indexOf(item),
        content_index: 0,
        delta: text,
      }),
    );
    return events;
  }

  private closeReasoning(): ResponsesEvent[] {
    const item = this.reasoning;
    if (!item) return [];
    this.reasoning = undefined;
    item.status = "completed";
    const location = { item_id: item.id, output_index: this.output.indexOf(item), content_index: 0 };
    return [
      this.emit({ type: "response.reasoning_text.done", ...location, text: item.content[0]!.text }),
      this.emit({
        type: "response.output_item.done",
        output_index: location.output_index,
        item: structuredClone(item),
      }),
    ];
  }

  private closeMessage(status: ItemStatus): ResponsesEvent[] {
    const message = this.message;
    if (!message) return [];
    this.message = undefined;
    message.status = status;
    const location = { item_id: message.id, output_index: this.output.indexOf(message), content_index: 0 };
    const part = message.content[0]!;
    return [
      this.emit({ type: "response.output_text.done", ...location, text: part.text, logprobs: [] }),
      this.emit({ type: "response.content_part.done", ...location, part: { ...part } }),
      this.emit({
        type: "response.output_item.done",
        output_index: location.output_index,
        item: structuredClone(message),
      }),
    ];
  }

  /** MCP items with OpenAI's events: a list, a call (in progress, its arguments, then completed or failed), a request. */
  private pushMcp(event: McpEvent): ResponsesEvent[] {
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
        const index = this.output.push(item) - 1;
        const location = { item_id: item.id, output_index: index };
        return [
          this.emit({ type: "response.output_item.added", output_index: index, item: { ...item, tools: [] } }),
          this.emit({ type: "response.mcp_list_tools.in_progress", ...location }),
          this.emit({
            type: event.error ? "response.mcp_list_tools.failed" : "response.mcp_list_tools.completed",
            ...location,
          }),
          this.emit({ type: "response.output_item.done", output_index: index, item: structuredClone(item) }),
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
        const index = this.output.push(item) - 1;
        const location = { item_id: item.id, output_index: index };
        return [
          this.emit({ type: "response.output_item.added", output_index: index, item: { ...item, arguments: "" } }),
          this.emit({ type: "response.mcp_call.in_progress", ...location }),
          this.emit({ type: "response.mcp_call_arguments.delta", ...location, delta: event.arguments }),
          this.emit({ type: "response.mcp_call_arguments.done", ...location, arguments: event.arguments }),
        ];
      }
      case "mcp-call": {
        const index = this.output.findIndex((item) => item.id === event.id);
        const item = this.output[index] as McpCallItem | undefined;
        if (!item) return [];
        item.output = event.output ?? null;
        item.error = event.error ?? null;
        item.approval_request_id = event.approvalRequestId ?? null;
        item.status = event.error !== undefined ? "failed" : "completed";
        const location = { item_id: item.id, output_index: index };
        return [
          this.emit({
            type: event.error !== undefined ? "response.mcp_call.failed" : "response.mcp_call.completed",
            ...location,
          }),
          this.emit({ type: "response.output_item.done", output_index: index, item: structuredClone(item) }),
        ];
      }
      case "mcp-approval-request": {
        const item: McpApprovalRequestItem = {
          type: "mcp_approval_request",
          id: event.id,
          server_label: event.server,
          name: event.name,
          arguments: event.arguments,
        };
        const index = this.output.push(item) - 1;
        return [
          this.emit({ type: "response.output_item.added", output_index: index, item: structuredClone(item) }),
          this.emit({ type: "response.output_item.done", output_index: index, item: structuredClone(item) }),
        ];
      }
      default:
        return event satisfies never;
    }
  }

  private addCall(call: ToolCall): ResponsesEvent[] {
    const item: FunctionCallItem = {
      type: "function_call",
      id: responseItemId("fc"),
      call_id: call.id,
      name: call.name,
      arguments: "",
      status: "in_progress",
    };
    this.output.push(item);
    const location = { item_id: item.id, output_index: this.output.length - 1 };
    const events = [
      this.emit({
        type: "response.output_item.added",
        output_index: location.output_index,
        item: structuredClone(item),
      }),
      this.emit({ type: "response.function_call_arguments.delta", ...location, delta: call.arguments }),
      this.emit({
        type: "response.function_call_arguments.done",
        ...location,
        name: call.name,
        arguments: call.arguments,
      }),
    ];
    item.arguments = call.arguments;
    item.status = "completed";
    events.push(
      this.emit({
        type: "response.output_item.done",
        output_index: location.output_index,
        item: structuredClone(item),
      }),
    );
    return events;
  }
}

function frame(event: ResponsesEvent): string {
  return `event: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`;
}

/**
 * The Responses API's SSE body: named events (`event: <type>` then `data: <json>`), no `[DONE]`. A failure after the
 * headers are sent becomes an `error` event.
 */
export function responsesEventStream(
  events: AsyncIterator<ToolLoopEvent>,
  assembler: ResponseAssembler,
): ReadableStream<Uint8Array> {
  const render = (items: ResponsesEvent[]) => (items.length === 0 ? null : items.map(frame).join(""));
  return textStream(events, (event) => render(assembler.push(event)), {
    close: () => render(assembler.end()) ?? "",
    fail: (error) => frame(assembler.error(error)),
  });
}
