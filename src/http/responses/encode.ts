import type { ChatEvent, FinishReason, ToolCall, Truncation, Usage } from "../../core/chat.js";
import { errorFromEvent } from "../../core/errors.js";
import type { McpEvent, ToolLoopEvent } from "../../gateway/toolLoop.js";
import type { AnswerEncoder } from "../generateRoute.js";
import { textStream } from "../textStream.js";
import { truncationOf } from "../truncation.js";
import { responsesErrorFields } from "./errors.js";
import {
  type FunctionCallItem,
  type ItemStatus,
  type MessageItem,
  type OutputItem,
  outputText,
  type ReasoningItem,
  type ResponseEnvelope,
  type ResponsesEvent,
  responseItemId,
  usageBody,
} from "./items.js";
import { mcpItemEvents } from "./mcpItems.js";
import type { ResponseCreateBody } from "./schemas.js";

export type { ResponseEnvelope } from "./items.js";

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
    return this.emit({ type: "error", ...responsesErrorFields(error) });
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

  /** MCP items with OpenAI's events (mcpItems.ts). */
  private pushMcp(event: McpEvent): ResponsesEvent[] {
    return mcpItemEvents(event, this.output, (item) => this.emit(item));
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

/** What the Response echoes from the request, in the SDK's shape (defaults filled in). */
function envelope(body: ResponseCreateBody): ResponseEnvelope {
  return {
    id: responseItemId("resp"),
    createdAt: Math.floor(Date.now() / 1000),
    model: body.model,
    echo: {
      instructions: body.instructions ?? null,
      max_output_tokens: body.max_output_tokens ?? null,
      parallel_tool_calls: body.parallel_tool_calls ?? true,
      temperature: body.temperature ?? null,
      text: { format: body.text?.format ?? { type: "text" } },
      tool_choice: body.tool_choice ?? "auto",
      tools: (body.tools ?? []).map((tool) =>
        tool.type === "function"
          ? {
              type: "function",
              name: tool.name,
              description: tool.description ?? null,
              parameters: tool.parameters ?? null,
              strict: tool.strict ?? null,
            }
          : {
              type: "mcp",
              server_label: tool.server_label,
              allowed_tools: tool.allowed_tools ?? null,
              // The client's credentials are never echoed back.
              headers: null,
              require_approval: tool.require_approval ?? "always",
              server_description: tool.server_description ?? null,
              server_url: tool.server_url ?? null,
            },
      ),
      top_p: body.top_p ?? null,
      ...(body.user !== undefined ? { user: body.user } : {}),
      metadata: body.metadata ?? {},
    },
  };
}

/** The encoder of one POST /v1/responses request: both forms push the same events through one assembler. */
export function responsesEncoder(body: ResponseCreateBody): AnswerEncoder<ToolLoopEvent> {
  const assembler = new ResponseAssembler(envelope(body));
  return {
    async whole(events) {
      let truncation: Truncation | undefined;
      for await (const event of events) {
        if (event.type === "error") throw errorFromEvent(event.error);
        truncation ??= truncationOf(event);
        assembler.push(event);
      }
      assembler.end();
      return { body: assembler.response(), truncation };
    },
    stream: (events) => responsesEventStream(events, assembler),
  };
}
