import { type ResponseFormat, reasoningForEffort, type ToolChoice, type ToolDefinition } from "../../core/chat.js";
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
import type { ResponseCreateBody, ResponseInputItem } from "./schemas.js";

type ContentParts = Exclude<Extract<ResponseInputItem, { type: "message" }>["content"], string>;

function contentText(content: string | ContentParts): string {
  if (typeof content === "string") return content;
  return content
    .map((part) => (part.type === "refusal" ? part.refusal : part.type === "input_image" ? "" : part.text))
    .join("");
}

/** A part list's images, decoded; `where` names the content for errors, `allowed` says whether images may be there. */
function contentImages(content: string | ContentParts, where: string, allowed: boolean): PendingImage[] {
  if (typeof content === "string") return [];
  const images: PendingImage[] = [];
  content.forEach((part, index) => {
    if (part.type !== "input_image") return;
    const field = `${where}[${index}]`;
    if (!allowed) throw new InvalidRequestError(`${field}: only user messages may carry images`, field);
    if (part.file_id || !part.image_url)
      throw new InvalidRequestError(
        `${field}: this server has no Files API; send the image inline as image_url: "data:image/png;base64,..."`,
        `${field}.file_id`,
      );
    images.push(decodeImageUrl(part.image_url, `${field}.image_url`));
  });
  return images;
}

/**
 * Input items → chat messages. A function_call joins the assistant turn before it (text and calls are one turn in
 * chat form); a function_call_output becomes a tool message named after the call it answers.
 */
function messages(body: ResponseCreateBody): PendingMessage[] {
  const out: PendingMessage[] = body.instructions ? [{ role: "system", content: body.instructions }] : [];
  if (typeof body.input === "string") return [...out, { role: "user", content: body.input }];
  const callNames = new Map<string, string>();
  for (const [index, item] of body.input.entries()) {
    switch (item.type) {
      case "message": {
        const images = contentImages(item.content, `input[${index}].content`, item.role === "user");
        out.push({
          role: item.role === "developer" ? "system" : item.role,
          content: contentText(item.content),
          ...(images.length > 0 ? { images } : {}),
        });
        break;
      }
      case "function_call": {
        callNames.set(item.call_id, item.name);
        const call = { id: item.call_id, name: item.name, arguments: item.arguments };
        const last = out.at(-1);
        if (last?.role === "assistant") last.toolCalls = [...(last.toolCalls ?? []), call];
        else out.push({ role: "assistant", content: "", toolCalls: [call] });
        break;
      }
      case "function_call_output": {
        const name = callNames.get(item.call_id);
        contentImages(item.output, `input[${index}].output`, false);
        out.push({
          role: "tool",
          content: contentText(item.output),
          toolCallId: item.call_id,
          ...(name ? { name } : {}),
        });
        break;
      }
      case "mcp_call": {
        // A call freehold ran in an earlier turn: the model sees it as its own call and the server's answer.
        const call = { id: item.id, name: item.name, arguments: item.arguments };
        const last = out.at(-1);
        if (last?.role === "assistant") last.toolCalls = [...(last.toolCalls ?? []), call];
        else out.push({ role: "assistant", content: "", toolCalls: [call] });
        out.push({
          role: "tool",
          content: item.error ? `Error: ${item.error}` : (item.output ?? ""),
          toolCallId: item.id,
          name: item.name,
        });
        break;
      }
      case "reasoning":
        // Earlier turns' reasoning stays out of the prompt, as chat templates leave it out.
        break;
      case "mcp_list_tools":
      case "mcp_approval_request":
      case "mcp_approval_response":
        // Lists are fetched again; approvals are read by responsesMcp.ts.
        break;
      default:
        item satisfies never;
    }
  }
  checkImageCount(out, "input");
  return out;
}

function tools(body: ResponseCreateBody): { tools?: ToolDefinition[]; toolChoice?: ToolChoice } {
  const choice = body.tool_choice ?? "auto";
  if (!body.tools || body.tools.length === 0) {
    if (choice !== "none" && choice !== "auto") {
      throw new InvalidRequestError("tool_choice needs tools: send the tools the model may call", "tool_choice");
    }
    return {};
  }
  const definitions = body.tools.flatMap((tool, index) =>
    tool.type === "function"
      ? [
          {
            name: tool.name,
            ...(tool.description ? { description: tool.description } : {}),
            parameters: prepareJsonSchema(
              tool.parameters ?? { type: "object", properties: {} },
              `tools[${index}].parameters`,
            ),
          },
        ]
      : [],
  );
  if (
    typeof choice === "object" &&
    choice.type === "function" &&
    !definitions.some((tool) => tool.name === choice.name)
  )
    throw new InvalidRequestError(`tool_choice names "${choice.name}", which is not among the tools`, "tool_choice");
  if (
    typeof choice === "object" &&
    choice.type === "mcp" &&
    !body.tools.some((tool) => tool.type === "mcp" && tool.server_label === choice.server_label)
  )
    throw new InvalidRequestError(
      `tool_choice names the MCP server ${choice.server_label}, which is not among the tools`,
      "tool_choice",
    );
  // An MCP choice without a tool name forces some call; the loop checks a named one once the server listed its tools.
  const toolChoice: ToolChoice = typeof choice !== "object" ? choice : choice.name ? { name: choice.name } : "required";
  return { ...(definitions.length ? { tools: definitions } : {}), toolChoice };
}

/** text.format → the internal response format; a schema is checked and normalised before anything is generated. */
function responseFormat(body: ResponseCreateBody): { responseFormat?: ResponseFormat } {
  const format = body.text?.format;
  if (!format || format.type === "text") return {};
  if (format.type === "json_object") return { responseFormat: { type: "json" } };
  return {
    responseFormat: {
      type: "json-schema",
      schema: prepareJsonSchema(format.schema, "text.format.schema"),
      name: format.name,
    },
  };
}

export function toResponsesChatRequest(body: ResponseCreateBody): PendingChatRequest {
  return {
    kind: "chat",
    model: body.model,
    messages: messages(body),
    // Only the validated fields: the body is a loose object, so it may carry unchecked extras such as `top_k`.
    sampling: sampling({ temperature: body.temperature, top_p: body.top_p }),
    limits: defined({ maxTokens: body.max_output_tokens }),
    ...responseFormat(body),
    ...tools(body),
    ...(body.metadata ? { metadata: body.metadata } : {}),
    ...(body.truncation === "auto" ? { overflow: "truncate-middle" as const } : {}),
    ...(body.reasoning?.effort ? { reasoning: reasoningForEffort(body.reasoning.effort) } : {}),
  };
}
