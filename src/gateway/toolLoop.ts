import { randomBytes } from "node:crypto";
import type {
  ChatEvent,
  ChatMessage,
  ChatRequest,
  FinishReason,
  ToolCall,
  ToolDefinition,
  Usage,
} from "../core/chat.js";
import type { RequestContext } from "../core/context.js";
import { InvalidRequestError, isFreeholdError } from "../core/errors.js";
import { prepareJsonSchema } from "../core/jsonSchema.js";
import type { ClientServer, HostedTool, ToolAccess, ToolHost } from "../core/toolHost.js";

/** One MCP server offered to the model for one request, with the client's (or the owner's) limits on it. */
export interface McpToolset {
  server: string;
  /** Which of the server's tools the model may see; undefined = all it lists. */
  allows?(tool: HostedTool): boolean;
  /** Whether a call of this tool waits for the client's approval (Responses' require_approval). */
  requiresApproval(tool: HostedTool): boolean;
}

/** A call the client approved (Responses' mcp_approval_response): run before the model continues. */
export interface ApprovedCall {
  approvalRequestId: string;
  server: string;
  name: string;
  arguments: string;
}

export interface ToolLoopOptions {
  toolsets: McpToolset[];
  /** The most model turns; the last one may not call tools, so the answer ends in text. */
  maxSteps: number;
  approved?: ApprovedCall[];
  /** Servers the client named by URL (Responses' server_url, when the owner allows it), by their label. */
  clientServers?: Record<string, ClientServer>;
}

/** The loop's own events besides the model's: what a Responses client sees as mcp_* items. */
export type McpEvent =
  | { type: "mcp-list-tools"; server: string; tools: HostedTool[]; error?: string }
  /** A call about to run (its result follows as mcp-call with the same id). */
  | { type: "mcp-call-start"; id: string; server: string; name: string; arguments: string }
  | {
      type: "mcp-call";
      id: string;
      server: string;
      name: string;
      arguments: string;
      output?: string;
      error?: string;
      approvalRequestId?: string;
    }
  | { type: "mcp-approval-request"; id: string; server: string; name: string; arguments: string };

export type ToolLoopEvent = ChatEvent | McpEvent;

/** One model turn: the gateway's metered, routed generation (a later turn gets its own request id). */
export type GenerateStep = (request: ChatRequest, context: RequestContext) => AsyncIterable<ChatEvent>;

export function mcpItemId(prefix: string): string {
  return `${prefix}_${randomBytes(16).toString("hex")}`;
}

function definition(tool: HostedTool): ToolDefinition {
  let parameters: Record<string, unknown>;
  try {
    parameters = prepareJsonSchema(tool.inputSchema, `the ${tool.server} tool ${tool.name}`);
  } catch {
    // A schema the grammar cannot enforce still describes the arguments; the server validates them itself.
    parameters = { type: "object" };
  }
  return { name: tool.name, ...(tool.description ? { description: tool.description } : {}), parameters };
}

/** A tool's failure as the model reads it: it may try again or answer without the tool. */
function errorText(error: string): string {
  return `Error: ${error}`;
}

/** Failures that end the request (a refusal, a limit) rather than becoming a tool error the model reads. */
function endsRequest(error: unknown): boolean {
  return isFreeholdError(error) && (error.status === 403 || error.status === 429 || error.status === 400);
}

interface Offered {
  tools: Map<string, HostedTool>;
  toolsets: Map<string, McpToolset>;
}

/**
 * Server-side tool execution: lists each server's tools, offers them with the client's own, and whenever the model
 * calls one, runs it and feeds the result back as an ordinary tool message, so the next turn goes through routing
 * and privacy policy like any content (a remote model sees a tool result only if the policy lets it). Calls of the
 * client's own tools end the answer and go back to the client as before.
 */
export async function* runToolLoop(
  step: GenerateStep,
  host: ToolHost,
  request: ChatRequest,
  context: RequestContext,
  options: ToolLoopOptions,
  signal?: AbortSignal,
): AsyncGenerator<ToolLoopEvent> {
  const access: ToolAccess = {
    context,
    model: request.model,
    ...(options.clientServers ? { clientServers: options.clientServers } : {}),
  };
  try {
    yield* loop(step, host, request, context, options, access, signal);
  } finally {
    // Client-chosen servers live as long as their request, however it ends.
    await host.release(access);
  }
}

async function* loop(
  step: GenerateStep,
  host: ToolHost,
  request: ChatRequest,
  context: RequestContext,
  options: ToolLoopOptions,
  access: ToolAccess,
  signal?: AbortSignal,
): AsyncGenerator<ToolLoopEvent> {
  const offered: Offered = { tools: new Map(), toolsets: new Map() };
  const clientTools = request.tools ?? [];
  for (const toolset of options.toolsets) yield await listToolset(host, toolset, access, offered, clientTools, signal);
  const mcpDefinitions = [...offered.tools.values()].map(definition);
  const choice = request.toolChoice;
  if (typeof choice === "object" && !offered.tools.has(choice.name) && !clientTools.some((t) => t.name === choice.name))
    throw new InvalidRequestError(
      `tool_choice names the tool ${choice.name}, which no tool of this request offers (MCP servers listed: ${[...offered.tools.keys()].join(", ") || "none"})`,
      "tool_choice",
    );
  const messages: ChatMessage[] = [...request.messages];
  const total: Usage = { promptTokens: 0, completionTokens: 0, cachedTokens: 0 };
  for (const approved of options.approved ?? []) {
    if (offered.tools.get(approved.name)?.server !== approved.server)
      throw new InvalidRequestError(
        `The approved call ${approved.approvalRequestId} names the tool ${approved.name} of the MCP server ${approved.server}, which this request does not offer (check tools[].server_label and allowed_tools)`,
        "input",
      );
    const call = { id: mcpItemId("call"), name: approved.name, arguments: approved.arguments };
    const id = mcpItemId("mcp");
    yield { type: "mcp-call-start", id, server: approved.server, name: call.name, arguments: call.arguments };
    const event = await runCall(host, approved.server, call, access, id, signal, approved.approvalRequestId);
    yield event;
    messages.push({ role: "assistant", content: "", toolCalls: [call] }, toolMessage(call, event));
  }
  for (let turn = 1; turn <= options.maxSteps; turn++) {
    const last = turn === options.maxSteps;
    // A forced choice applies to the first turn only; otherwise the model could never stop calling tools.
    const forced = turn === 1 && !options.approved?.length;
    const toolChoice =
      last && mcpDefinitions.length ? "none" : forced ? request.toolChoice : relaxed(request.toolChoice);
    // max_tokens bounds the whole answer, as OpenAI's max_output_tokens does, not each turn.
    const budget = request.limits.maxTokens;
    const left = budget === undefined ? undefined : budget - total.completionTokens;
    if (left !== undefined && left <= 0) return yield* ending(total, { type: "finish", reason: "length" });
    const turnRequest: ChatRequest = {
      ...request,
      limits: { ...request.limits, ...(left !== undefined ? { maxTokens: left } : {}) },
      messages: [...messages],
      tools: [...clientTools, ...mcpDefinitions],
      ...(toolChoice ? { toolChoice } : {}),
    };
    const turnContext = turn === 1 ? context : { ...context, requestId: `${context.requestId}.${turn}` };
    let text = "";
    const mcpCalls: ToolCall[] = [];
    let clientCalls = 0;
    let finish: Extract<ChatEvent, { type: "finish" }> = { type: "finish", reason: "stop" };
    for await (const event of step(turnRequest, turnContext)) {
      switch (event.type) {
        case "text-delta":
          text += event.text;
          yield event;
          break;
        case "reasoning":
        case "truncated":
          // The client sees each turn's reasoning (not carried into the next turn's prompt) and any cut prompt.
          yield event;
          break;
        case "tool-call":
          if (offered.tools.has(event.call.name)) mcpCalls.push(event.call);
          else {
            clientCalls++;
            yield event;
          }
          break;
        case "usage":
          total.promptTokens += event.usage.promptTokens;
          total.completionTokens += event.usage.completionTokens;
          total.cachedTokens! += event.usage.cachedTokens ?? 0;
          break;
        case "finish":
          finish = event;
          break;
        case "error":
          yield event;
          return;
        default:
          event satisfies never;
      }
    }
    if (mcpCalls.length === 0) return yield* ending(total, finish);
    const waiting = mcpCalls.filter((call) => needsApproval(offered, call));
    const results: ChatMessage[] = [];
    for (const call of mcpCalls.filter((call) => !waiting.includes(call))) {
      const server = offered.tools.get(call.name)!.server;
      const id = mcpItemId("mcp");
      yield { type: "mcp-call-start", id, server, name: call.name, arguments: call.arguments };
      const event = await runCall(host, server, call, access, id, signal);
      yield event;
      results.push(toolMessage(call, event));
    }
    if (waiting.length > 0) {
      for (const call of waiting)
        yield {
          type: "mcp-approval-request",
          id: mcpItemId("mcpr"),
          server: offered.tools.get(call.name)!.server,
          name: call.name,
          arguments: call.arguments,
        };
      return yield* ending(total, { type: "finish", reason: "stop" });
    }
    if (clientCalls > 0) return yield* ending(total, { type: "finish", reason: "tool-calls" });
    messages.push({ role: "assistant", content: text, toolCalls: mcpCalls }, ...results);
  }
  yield* ending(total, { type: "finish", reason: "stop" });
}

function relaxed(choice: ChatRequest["toolChoice"]): ChatRequest["toolChoice"] {
  return choice === "none" ? "none" : "auto";
}

function* ending(usage: Usage, finish: { type: "finish"; reason: FinishReason; stopSequence?: string }) {
  yield { type: "usage", usage } as const;
  yield finish;
}

function needsApproval(offered: Offered, call: ToolCall): boolean {
  const tool = offered.tools.get(call.name)!;
  return offered.toolsets.get(tool.server)!.requiresApproval(tool);
}

async function listToolset(
  host: ToolHost,
  toolset: McpToolset,
  access: ToolAccess,
  offered: Offered,
  clientTools: ToolDefinition[],
  signal?: AbortSignal,
): Promise<McpEvent> {
  let tools: HostedTool[];
  try {
    tools = await host.listTools(toolset.server, access, signal);
  } catch (error) {
    if (endsRequest(error)) throw error;
    // The server is down: the model goes on without its tools, and the client sees why.
    return { type: "mcp-list-tools", server: toolset.server, tools: [], error: (error as Error).message };
  }
  const chosen = toolset.allows ? tools.filter((tool) => toolset.allows!(tool)) : tools;
  for (const tool of chosen) {
    const other = offered.tools.get(tool.name);
    if (other || clientTools.some((client) => client.name === tool.name))
      throw new InvalidRequestError(
        `The tool name ${tool.name} is offered by the MCP server ${toolset.server} and also by ${other ? `the MCP server ${other.server}` : "the request's own tools"}; the model could not tell them apart. Leave one out (allowed_tools, or rename the function).`,
        "tools",
        "tool_name_conflict",
      );
    offered.tools.set(tool.name, tool);
  }
  offered.toolsets.set(toolset.server, toolset);
  return { type: "mcp-list-tools", server: toolset.server, tools: chosen };
}

function toolMessage(call: ToolCall, event: Extract<McpEvent, { type: "mcp-call" }>): ChatMessage {
  return {
    role: "tool",
    content: event.error !== undefined ? errorText(event.error) : (event.output ?? ""),
    toolCallId: call.id,
    name: call.name,
  };
}

async function runCall(
  host: ToolHost,
  server: string,
  call: ToolCall,
  access: ToolAccess,
  id: string,
  signal: AbortSignal | undefined,
  approvalRequestId?: string,
): Promise<Extract<McpEvent, { type: "mcp-call" }>> {
  const base = {
    type: "mcp-call" as const,
    id,
    server,
    name: call.name,
    arguments: call.arguments,
    ...(approvalRequestId ? { approvalRequestId } : {}),
  };
  let args: unknown;
  try {
    args = call.arguments.trim() === "" ? {} : JSON.parse(call.arguments);
  } catch {
    return { ...base, error: "the arguments are not valid JSON" };
  }
  if (args === null || typeof args !== "object" || Array.isArray(args))
    return { ...base, error: "the arguments must be a JSON object" };
  try {
    const result = await host.callTool(server, call.name, args as Record<string, unknown>, access, signal);
    return result.isError ? { ...base, error: result.output } : { ...base, output: result.output };
  } catch (error) {
    if (endsRequest(error)) throw error;
    return { ...base, error: error instanceof Error ? error.message : String(error) };
  }
}
