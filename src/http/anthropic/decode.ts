import type {
  ReasoningOptions,
  ResponseFormat,
  SamplingOptions,
  ToolCall,
  ToolChoice,
  ToolDefinition,
} from "../../core/chat.js";
import { InvalidRequestError } from "../../core/errors.js";
import { prepareJsonSchema } from "../../core/jsonSchema.js";
import {
  checkImageCount,
  decodeBase64Image,
  type PendingChatRequest,
  type PendingImage,
  type PendingMessage,
} from "../images.js";
import type { CountTokensBody, MessageParam, MessagesBody } from "./schemas.js";

/** Text blocks become one text; a newline keeps separate blocks from running words together. */
function joinText(content: string | { text: string }[]): string {
  return typeof content === "string" ? content : content.map((block) => block.text).join("\n");
}

/**
 * One Anthropic message → internal messages. tool_result blocks (which Anthropic puts first in a user turn) become
 * "tool" messages ahead of the turn's text; an assistant turn's tool_use blocks become its tool calls.
 */
function toChatMessages(message: MessageParam, index: number, toolNames: Map<string, string>): PendingMessage[] {
  if (typeof message.content === "string") return [{ role: message.role, content: message.content }];
  const texts: string[] = [];
  const images: PendingImage[] = [];
  const calls: ToolCall[] = [];
  const results: PendingMessage[] = [];
  message.content.forEach((block, blockIndex) => {
    const param = `messages[${index}].content[${blockIndex}]`;
    switch (block.type) {
      case "text":
        texts.push(block.text);
        break;
      case "image":
        if (message.role !== "user")
          throw new InvalidRequestError(`Invalid value for ${param}: image blocks belong in user messages`, param);
        if (block.source.type === "url") {
          // Fetched later (resolveImages), only from hosts the owner allows.
          if (!/^https?:\/\//i.test(block.source.url))
            throw new InvalidRequestError(
              `Invalid value for ${param}.source.url: must be an http(s) URL (or send a base64 source)`,
              `${param}.source.url`,
              "invalid_image",
            );
          images.push({ url: block.source.url, field: `${param}.source.url` });
        } else images.push(decodeBase64Image(block.source.data, `${param}.source.data`));
        break;
      case "tool_use":
        if (message.role !== "assistant")
          throw new InvalidRequestError(
            `Invalid value for ${param}: tool_use blocks belong in assistant messages`,
            param,
          );
        calls.push({ id: block.id, name: block.name, arguments: JSON.stringify(block.input) });
        toolNames.set(block.id, block.name);
        break;
      case "tool_result": {
        if (message.role !== "user")
          throw new InvalidRequestError(
            `Invalid value for ${param}: tool_result blocks belong in user messages`,
            param,
          );
        const text = joinText(block.content ?? "");
        const name = toolNames.get(block.tool_use_id);
        results.push({
          role: "tool",
          content: block.is_error ? `Error: ${text}` : text,
          toolCallId: block.tool_use_id,
          ...(name ? { name } : {}),
        });
        break;
      }
      case "thinking":
      case "redacted_thinking":
        break;
      default:
        block satisfies never;
    }
  });
  const turn: PendingMessage[] = [];
  if (texts.length > 0 || calls.length > 0 || images.length > 0 || results.length === 0)
    turn.push({
      role: message.role,
      content: texts.join("\n"),
      ...(images.length > 0 ? { images } : {}),
      ...(calls.length > 0 ? { toolCalls: calls } : {}),
    });
  return [...results, ...turn];
}

function toMessages(body: CountTokensBody): PendingMessage[] {
  const system = body.system ? joinText(body.system) : "";
  const toolNames = new Map<string, string>();
  const messages = [
    ...(system ? [{ role: "system" as const, content: system }] : []),
    ...body.messages.flatMap((message, index) => toChatMessages(message, index, toolNames)),
  ];
  checkImageCount(messages);
  return messages;
}

/** Anthropic tools → internal ones, each input_schema checked and normalised as a grammar will need it. */
function tools(body: CountTokensBody): {
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  parallelToolCalls?: boolean;
} {
  const choice = body.tool_choice;
  if (!body.tools || body.tools.length === 0) {
    if (choice && (choice.type === "any" || choice.type === "tool"))
      throw new InvalidRequestError(
        `Invalid value for tool_choice: "${choice.type}" needs tools; send the tools the model may call`,
        "tool_choice",
      );
    return {};
  }
  const definitions = body.tools.map((tool, index) => ({
    name: tool.name,
    ...(tool.description ? { description: tool.description } : {}),
    parameters: prepareJsonSchema(tool.input_schema, `tools[${index}].input_schema`),
  }));
  if (choice?.type === "tool" && !definitions.some((tool) => tool.name === choice.name))
    throw new InvalidRequestError(
      `Invalid value for tool_choice.name: "${choice.name}" is not among the tools`,
      "tool_choice.name",
    );
  const toolChoice: ToolChoice =
    !choice || choice.type === "auto"
      ? "auto"
      : choice.type === "any"
        ? "required"
        : choice.type === "none"
          ? "none"
          : { name: choice.name };
  const parallel = !(choice && "disable_parallel_tool_use" in choice && choice.disable_parallel_tool_use);
  return { tools: definitions, toolChoice, parallelToolCalls: parallel };
}

function responseFormat(body: CountTokensBody): { responseFormat?: ResponseFormat } {
  const format = body.output_config?.format;
  if (!format) return {};
  return {
    responseFormat: { type: "json-schema", schema: prepareJsonSchema(format.schema, "output_config.format.schema") },
  };
}

function sampling(body: MessagesBody): SamplingOptions {
  return {
    ...(body.temperature != null ? { temperature: body.temperature } : {}),
    ...(body.top_p != null ? { topP: body.top_p } : {}),
    ...(body.top_k != null ? { topK: body.top_k } : {}),
  };
}

/** The prompt part of a request: enough to count its tokens. */
export function toCountRequest(body: CountTokensBody): PendingChatRequest {
  return {
    kind: "chat",
    model: body.model,
    messages: toMessages(body),
    sampling: {},
    limits: {},
    ...tools(body),
    ...responseFormat(body),
  };
}

export function toChatRequest(body: MessagesBody): PendingChatRequest {
  const userId = body.metadata?.user_id;
  return {
    ...toCountRequest(body),
    sampling: sampling(body),
    limits: { maxTokens: body.max_tokens, stop: body.stop_sequences ?? [] },
    ...(userId ? { metadata: { user_id: userId } } : {}),
    ...thinking(body.thinking),
    ...(body.truncation ? { overflow: body.truncation } : {}),
  };
}

/** Extended thinking → a reasoning budget: enabled spends at most budget_tokens, disabled closes it at once. */
function thinking(value: MessagesBody["thinking"]): { reasoning?: ReasoningOptions } {
  if (!value) return {};
  // adaptive: reason with no budget (an empty ReasoningOptions).
  if (value.type === "adaptive") return { reasoning: {} };
  return { reasoning: { budgetTokens: value.type === "enabled" ? value.budget_tokens : 0 } };
}
