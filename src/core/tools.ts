import type { ChatMessage, ToolChoice, ToolDefinition } from "./chat.js";

/**
 * Tool calling for models whose templates know nothing of tools: the tools are described in the system message, a
 * call is a JSON object `{"name": ..., "arguments": {...}}`, and a forced call is enforced by a grammar built from
 * the tools' parameter schemas. Earlier calls and results are rendered back into the conversation as text.
 */

export function toolsInstruction(tools: ToolDefinition[], parallel = false): string {
  const listing = tools.map((tool) => ({
    name: tool.name,
    description: tool.description ?? "",
    parameters: tool.parameters,
  }));
  return [
    "You can call these tools:",
    JSON.stringify(listing),
    'To call a tool, answer with only a JSON object: {"name": "<tool name>", "arguments": {<arguments>}}.',
    ...(parallel ? ["To call several tools at once, answer with only a JSON array of such objects."] : []),
  ].join("\n");
}

/** The conversation as the model sees it: tool instructions in the system message, calls and results as text. */
export function messagesWithTools(
  messages: ChatMessage[],
  tools: ToolDefinition[] | undefined,
  choice: ToolChoice | undefined,
  parallel = false,
): ChatMessage[] {
  const active = tools && tools.length > 0 && choice !== "none";
  const rendered: ChatMessage[] = messages.map((message) => {
    if (message.role === "assistant" && message.toolCalls && message.toolCalls.length > 0) {
      const calls = message.toolCalls.map(
        (call) => `{"name": ${JSON.stringify(call.name)}, "arguments": ${call.arguments || "{}"}}`,
      );
      // Several calls of one turn are shown as the array the model is told to write for parallel calls.
      const written = calls.length === 1 ? calls : [`[${calls.join(", ")}]`];
      return { role: "assistant", content: [message.content, ...written].filter(Boolean).join("\n") };
    }
    if (message.role === "tool") {
      return {
        role: "user",
        content: `Result of tool call${message.name ? ` ${message.name}` : ""}${message.toolCallId ? ` (${message.toolCallId})` : ""}: ${message.content}`,
      };
    }
    return message;
  });
  if (!active) return rendered;
  const instruction = toolsInstruction(tools, parallel && choice === "auto");
  const first = rendered[0];
  if (first?.role === "system")
    return [{ role: "system", content: `${first.content}\n\n${instruction}` }, ...rendered.slice(1)];
  return [{ role: "system", content: instruction }, ...rendered];
}

/** The most calls one answer may hold. */
export const MAX_PARALLEL_CALLS = 8;

/**
 * The JSON schema a forced call must match: one call to one of the allowed tools, with its own parameters (under
 * `argumentsKey`: a native format's own key, such as Llama 3.x's "parameters"). A forced
 * answer is always one call: a grammar-forced array lets a small model add calls until it runs out of tokens.
 * Several calls in one answer come from the model's own choice ("auto"), written as an array.
 */
export function toolCallSchema(
  tools: ToolDefinition[],
  choice: ToolChoice,
  argumentsKey = "arguments",
): Record<string, unknown> {
  const allowed = typeof choice === "object" ? tools.filter((tool) => tool.name === choice.name) : tools;
  const variants = allowed.map((tool) => ({
    type: "object",
    properties: { name: { const: tool.name }, [argumentsKey]: tool.parameters },
    required: ["name", argumentsKey],
    additionalProperties: false,
  }));
  return variants.length === 1 ? variants[0]! : { oneOf: variants };
}

/**
 * Reads the tool calls in a model's answer: one call object, or (parallel calls) an array of them. Null when the
 * answer is not entirely calls to the offered tools, in which case it is text.
 */
export function parseToolCalls(
  text: string,
  tools: ToolDefinition[],
  parallel = true,
): { name: string; arguments: string }[] | null {
  let value: unknown;
  try {
    value = JSON.parse(text.trim());
  } catch {
    return null;
  }
  if (!Array.isArray(value)) {
    const call = toolCallFrom(value, tools);
    return call ? [call] : null;
  }
  if (!parallel || value.length === 0 || value.length > MAX_PARALLEL_CALLS) return null;
  const calls = value.map((item) => toolCallFrom(item, tools));
  return calls.every((call) => call !== null) ? (calls as { name: string; arguments: string }[]) : null;
}

/** Reads one tool call from a model's answer; null when the answer is not a call to one of the tools. */
export function parseToolCall(text: string, tools: ToolDefinition[]): { name: string; arguments: string } | null {
  let value: unknown;
  try {
    value = JSON.parse(text.trim());
  } catch {
    return null;
  }
  return toolCallFrom(value, tools);
}

function toolCallFrom(value: unknown, tools: ToolDefinition[]): { name: string; arguments: string } | null {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return null;
  const { name, arguments: args } = value as { name?: unknown; arguments?: unknown };
  if (typeof name !== "string" || !tools.some((tool) => tool.name === name)) return null;
  if (args !== undefined && (args === null || typeof args !== "object" || Array.isArray(args))) return null;
  return { name, arguments: JSON.stringify(args ?? {}) };
}

export function forcesToolCall(tools: ToolDefinition[] | undefined, choice: ToolChoice | undefined): boolean {
  return !!tools && tools.length > 0 && (choice === "required" || typeof choice === "object");
}
