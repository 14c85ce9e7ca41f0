import { z } from "zod";

/**
 * The Responses API request (`POST /v1/responses`), the stateless part, as the official SDK types describe it
 * (openai/resources/responses/responses.d.ts). Fields that need stored state or features this server lacks are
 * refused with a 400 that says so; fields not listed are ignored.
 */

const finite = () => z.number().refine(Number.isFinite, "must be a finite number");
/** OpenAI's rule for function names, which the Responses API shares with Chat Completions. */
const toolName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, underscores or dashes");

/** A message's parts: text, and images inline (`input_image` with a data: URI); files are refused. */
const contentPart = z.discriminatedUnion(
  "type",
  [
    z.looseObject({ type: z.literal("input_text"), text: z.string() }),
    z.looseObject({ type: z.literal("output_text"), text: z.string() }),
    z.looseObject({ type: z.literal("refusal"), refusal: z.string() }),
    z.looseObject({
      type: z.literal("input_image"),
      image_url: z.string().min(1).nullable().optional(),
      file_id: z.string().nullable().optional(),
      detail: z.enum(["low", "high", "auto"]).optional(),
    }),
  ],
  {
    error: (issue) =>
      `content of type ${JSON.stringify(typeOf(issue.input))} is not supported: this server reads input_text, output_text and input_image`,
  },
);

const messageItem = z.looseObject({
  type: z.literal("message"),
  role: z.enum(["user", "assistant", "system", "developer"]),
  content: z.union([z.string(), z.array(contentPart)]),
});

const functionCallItem = z.looseObject({
  type: z.literal("function_call"),
  call_id: z.string().min(1).max(256),
  name: toolName,
  arguments: z.string(),
});

const functionCallOutputItem = z.looseObject({
  type: z.literal("function_call_output"),
  call_id: z.string().min(1).max(256),
  output: z.union([z.string(), z.array(contentPart)]),
});

/** An earlier turn's MCP items, sent back as input (this server keeps no state, so the client carries them). */
const mcpServerLabel = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, "must be a configured MCP server's name");

const mcpListToolsItem = z.looseObject({ type: z.literal("mcp_list_tools"), server_label: mcpServerLabel });

const mcpCallItem = z.looseObject({
  type: z.literal("mcp_call"),
  id: z.string().min(1).max(256),
  server_label: mcpServerLabel,
  name: toolName,
  arguments: z.string(),
  output: z.string().nullable().optional(),
  error: z.string().nullable().optional(),
  approval_request_id: z.string().max(256).nullable().optional(),
});

const mcpApprovalRequestItem = z.looseObject({
  type: z.literal("mcp_approval_request"),
  id: z.string().min(1).max(256),
  server_label: mcpServerLabel,
  name: toolName,
  arguments: z.string(),
});

const mcpApprovalResponseItem = z.looseObject({
  type: z.literal("mcp_approval_response"),
  approval_request_id: z.string().min(1).max(256),
  approve: z.boolean(),
  reason: z.string().nullable().optional(),
});

/** An earlier answer's reasoning, sent back as input: dropped (earlier turns' reasoning is not part of the prompt). */
const reasoningItem = z.looseObject({ type: z.literal("reasoning") });

function typeOf(input: unknown): unknown {
  return input !== null && typeof input === "object" ? (input as { type?: unknown }).type : undefined;
}

function unsupportedItem(type: unknown): string {
  if (type === undefined) return 'an input item needs a "role" (a message) or a "type"';
  if (type === "item_reference")
    return "item references point at stored items, and this server stores none: send the items themselves";
  return `input items of type ${JSON.stringify(type)} are not supported (supported: message, function_call, function_call_output, mcp_list_tools, mcp_call, mcp_approval_request, mcp_approval_response, reasoning)`;
}

/** An item without `type` but with `role` is a message (EasyInputMessage). */
const inputItem = z.preprocess(
  (item) =>
    item !== null && typeof item === "object" && !Array.isArray(item) && !("type" in item) && "role" in item
      ? { ...item, type: "message" }
      : item,
  z.discriminatedUnion(
    "type",
    [
      messageItem,
      functionCallItem,
      functionCallOutputItem,
      mcpListToolsItem,
      mcpCallItem,
      mcpApprovalRequestItem,
      mcpApprovalResponseItem,
      reasoningItem,
    ],
    {
      error: (issue) => unsupportedItem(typeOf(issue.input)),
    },
  ),
);

const functionTool = z.looseObject({
  type: z.literal("function"),
  name: toolName,
  description: z.string().max(4096).nullable().optional(),
  parameters: z.record(z.string(), z.unknown()).nullable().optional(),
  strict: z.boolean().nullable().optional(),
});

const mcpToolFilter = z.strictObject({
  tool_names: z.array(toolName).max(128).optional(),
  read_only: z.boolean().optional(),
});

/** OpenAI's remote MCP tool, naming a server the owner configured (docs/mcp.md). */
const mcpTool = z.looseObject({
  type: z.literal("mcp"),
  server_label: mcpServerLabel,
  server_url: z.string().optional(),
  allowed_tools: z
    .union([z.array(toolName).max(128), mcpToolFilter])
    .nullable()
    .optional(),
  require_approval: z
    .union([
      z.enum(["always", "never"]),
      z.strictObject({ always: mcpToolFilter.optional(), never: mcpToolFilter.optional() }),
    ])
    .nullable()
    .optional(),
  server_description: z.string().max(4096).optional(),
  headers: z.record(z.string(), z.string()).nullable().optional(),
  authorization: z.string().optional(),
  connector_id: z
    .string()
    .optional()
    .refine(
      (id) => id === undefined,
      "connectors are OpenAI's hosted services; name a configured MCP server in server_label instead",
    ),
});

const tool = z.discriminatedUnion("type", [functionTool, mcpTool], {
  error: (issue) =>
    `${JSON.stringify(typeOf(issue.input))} tools are not supported by this server: only function tools (type "function") and MCP tools (type "mcp")`,
});

const toolChoice = z.union([
  z.enum(["none", "auto", "required"]),
  z.object({ type: z.literal("function"), name: toolName }),
  z.object({ type: z.literal("mcp"), server_label: mcpServerLabel, name: toolName.nullable().optional() }),
]);

const textFormat = z.discriminatedUnion(
  "type",
  [
    z.object({ type: z.literal("text") }),
    z.object({ type: z.literal("json_object") }),
    z.looseObject({
      type: z.literal("json_schema"),
      name: z.string().min(1).max(64),
      schema: z.record(z.string(), z.unknown()),
      description: z.string().optional(),
      strict: z.boolean().nullable().optional(),
    }),
  ],
  { error: () => 'must be {"type": "text"}, {"type": "json_object"} or {"type": "json_schema", "name", "schema"}' },
);

const noState = "this server keeps no response state";

export const responseCreateSchema = z.looseObject({
  model: z.string().min(1).max(512),
  input: z.union([z.string(), z.array(inputItem).min(1)]),
  instructions: z.string().nullable().optional(),
  tools: z.array(tool).max(128).nullable().optional(),
  tool_choice: toolChoice.nullable().optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  temperature: finite().min(0).max(2).nullable().optional(),
  top_p: finite().min(0).max(1).nullable().optional(),
  max_output_tokens: z.number().int().min(1).max(1_048_576).nullable().optional(),
  stream: z.boolean().nullable().optional(),
  text: z.looseObject({ format: textFormat.optional() }).optional(),
  metadata: z
    .record(z.string().max(64), z.string().max(512))
    .refine((metadata) => Object.keys(metadata).length <= 16, "must have at most 16 keys")
    .nullable()
    .optional(),
  store: z.boolean().nullable().optional(),
  user: z.string().max(256).optional(),
  background: z
    .boolean()
    .nullable()
    .optional()
    .refine(
      (background) => background !== true,
      `background is not supported: ${noState}; use stream: true for long answers`,
    ),
  include: z
    .array(z.string())
    .nullable()
    .optional()
    .refine((include) => !include?.length, "include is not supported: this server has none of the extra outputs"),
  /** effort: a reasoning token budget per level (core REASONING_EFFORT_BUDGETS); no summaries are made. */
  reasoning: z
    .object({
      effort: z.enum(["none", "minimal", "low", "medium", "high"]).nullable().optional(),
      summary: z
        .null()
        .optional()
        .or(z.enum(["auto", "concise", "detailed"]))
        .refine(
          (summary) => summary === null || summary === undefined,
          "reasoning summaries are not made by this server: the reasoning item carries the model's own reasoning text",
        ),
      generate_summary: z.null().optional(),
    })
    .nullable()
    .optional(),
  top_logprobs: z
    .number()
    .nullable()
    .optional()
    .refine((count) => !count, "top_logprobs is not supported by this server yet"),
  /** "auto": the oldest items are dropped to fit the context (truncate-middle); "disabled" (default): a 400. */
  truncation: z.enum(["auto", "disabled"]).nullable().optional(),
});

export type ResponseCreateBody = z.infer<typeof responseCreateSchema>;
export type ResponseInputItem = Exclude<ResponseCreateBody["input"], string>[number];
export type ResponseTool = NonNullable<ResponseCreateBody["tools"]>[number];
export type ResponseMcpTool = Extract<ResponseTool, { type: "mcp" }>;

/** Fields that refer to state this server does not keep: refused whenever present. */
export const statefulResponseFields: Record<string, string> = {
  previous_response_id: `${noState}; leave out previous_response_id and send the whole conversation as input (earlier output items included)`,
  conversation: `${noState}; leave out conversation and send the whole conversation as input`,
  prompt: "stored prompt templates are not supported; send instructions and input instead",
};
