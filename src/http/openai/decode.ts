import {
  type CompletionRequest,
  type ResponseFormat,
  reasoningForEffort,
  type ToolChoice,
  type ToolDefinition,
} from "../../core/chat.js";
import { parseKeepAlive } from "../../core/duration.js";
import { InvalidRequestError } from "../../core/errors.js";
import { prepareJsonSchema } from "../../core/jsonSchema.js";
import {
  checkImageCount,
  decodeImageUrl,
  type PendingChatRequest,
  type PendingImage,
  type PendingMessage,
} from "../images.js";
import { defined, sampling } from "../samplingFields.js";
import type { ChatCompletionBody, CompletionBody } from "./schemas.js";

function stops(stop: string | string[] | null | undefined): string[] {
  if (stop === null || stop === undefined) return [];
  return (Array.isArray(stop) ? stop : [stop]).filter((s) => s.length > 0);
}

function messageText(content: ChatCompletionBody["messages"][number]["content"]): string {
  if (content === null || content === undefined) return "";
  if (typeof content === "string") return content;
  return content.map((part) => (part.type === "text" ? part.text : "")).join("");
}

/** The message's image parts, decoded (a bad one is a 400 naming its place). */
function messageImages(content: ChatCompletionBody["messages"][number]["content"], index: number): PendingImage[] {
  if (!Array.isArray(content)) return [];
  const images: PendingImage[] = [];
  content.forEach((part, partIndex) => {
    if (part.type === "image_url")
      images.push(decodeImageUrl(part.image_url.url, `messages[${index}].content[${partIndex}].image_url.url`));
  });
  return images;
}

/** freehold extension, with Ollama's meaning: how long the model stays loaded after this request. */
function keepAlive(value: number | string | undefined): { keepAliveMs?: number } {
  return value === undefined ? {} : { keepAliveMs: parseKeepAlive(value) };
}

/** OpenAI's response_format → the internal one; schemas are checked and normalised before anything is generated. */
function responseFormat(format: ChatCompletionBody["response_format"]): { responseFormat?: ResponseFormat } {
  if (!format || format.type === "text") return {};
  if (format.type === "json_object" || !format.json_schema.schema) return { responseFormat: { type: "json" } };
  return {
    responseFormat: {
      type: "json-schema",
      schema: prepareJsonSchema(format.json_schema.schema, "response_format"),
      name: format.json_schema.name,
    },
  };
}

/** OpenAI tools → internal ones, each parameter schema checked and normalised like a response_format schema. */
function tools(body: ChatCompletionBody): { tools?: ToolDefinition[]; toolChoice?: ToolChoice } {
  if (!body.tools || body.tools.length === 0) {
    if (body.tool_choice && body.tool_choice !== "none" && body.tool_choice !== "auto") {
      throw new InvalidRequestError("tool_choice needs tools: send the tools the model may call", "tool_choice");
    }
    return {};
  }
  const definitions = body.tools.map((tool, index) => ({
    name: tool.function.name,
    ...(tool.function.description ? { description: tool.function.description } : {}),
    parameters: prepareJsonSchema(
      tool.function.parameters ?? { type: "object", properties: {} },
      `tools[${index}].function.parameters`,
    ),
  }));
  const choice = body.tool_choice ?? "auto";
  if (typeof choice === "object" && !definitions.some((tool) => tool.name === choice.function.name)) {
    throw new InvalidRequestError(
      `tool_choice names "${choice.function.name}", which is not among the tools`,
      "tool_choice",
    );
  }
  return { tools: definitions, toolChoice: typeof choice === "object" ? { name: choice.function.name } : choice };
}

/** The request, its image URLs not yet fetched (resolveImages). */
export function toChatRequest(body: ChatCompletionBody): PendingChatRequest {
  const messages: PendingMessage[] = body.messages.map((message, index) => {
    const images = messageImages(message.content, index);
    if (images.length > 0 && message.role !== "user")
      throw new InvalidRequestError(
        `messages[${index}]: only user messages may carry images`,
        `messages[${index}].content`,
      );
    return {
      role: message.role === "developer" ? "system" : message.role,
      content: messageText(message.content),
      ...(images.length > 0 ? { images } : {}),
      ...(message.name ? { name: message.name } : {}),
      ...(message.tool_call_id ? { toolCallId: message.tool_call_id } : {}),
      ...(message.tool_calls
        ? {
            toolCalls: message.tool_calls.map((call) => ({
              id: call.id,
              name: call.function.name,
              arguments: call.function.arguments,
            })),
          }
        : {}),
    };
  });
  checkImageCount(messages);
  const maxTokens = body.max_completion_tokens ?? body.max_tokens;
  if (body.top_logprobs !== undefined && body.top_logprobs !== null && body.logprobs !== true) {
    throw new InvalidRequestError("top_logprobs needs logprobs: true", "top_logprobs");
  }
  return {
    kind: "chat",
    model: body.model,
    messages,
    sampling: sampling(body),
    limits: defined({ maxTokens, stop: stops(body.stop), ignoreEos: body.ignore_eos }),
    ...responseFormat(body.response_format),
    ...tools(body),
    // OpenAI's default: the model may call several tools in one answer.
    ...(body.tools && body.tools.length > 0 ? { parallelToolCalls: body.parallel_tool_calls ?? true } : {}),
    ...(body.logprobs ? { logprobs: body.top_logprobs ?? 0 } : {}),
    ...(body.reasoning_effort ? { reasoning: reasoningForEffort(body.reasoning_effort) } : {}),
    ...(body.truncation ? { overflow: body.truncation } : {}),
    ...keepAlive(body.keep_alive),
  };
}

export function toCompletionRequest(body: CompletionBody): CompletionRequest {
  const raw = body.prompt;
  // One prompt per request: a one-item array is the same prompt.
  const prompt: string | number[] =
    typeof raw === "string"
      ? raw
      : Array.isArray(raw[0])
        ? (raw[0] as number[])
        : typeof raw[0] === "string"
          ? (raw[0] as string)
          : (raw as number[]);
  return {
    kind: "completion",
    model: body.model,
    prompt,
    sampling: sampling(body),
    limits: defined({ maxTokens: body.max_tokens ?? 16, stop: stops(body.stop), ignoreEos: body.ignore_eos }),
    ...(body.logprobs !== undefined && body.logprobs !== null ? { logprobs: body.logprobs } : {}),
    ...(body.truncation ? { overflow: body.truncation } : {}),
    ...keepAlive(body.keep_alive),
  };
}
