import { z } from "zod";

/**
 * Requests as Anthropic's Messages API documents them. Every known field is validated; unknown top-level fields
 * (`service_tier`, `container`, ...) are accepted and ignored, as clients send extras. Optional fields
 * also accept null, which some clients send for "absent".
 */

const finite = () => z.number().refine(Number.isFinite, "must be a finite number");
const MAX_TOKENS_LIMIT = 1_048_576;

// `cache_control` and `citations` on blocks are accepted and dropped (z.object strips unknown keys).
const textBlock = z.object({ type: z.literal("text"), text: z.string() });

const toolName = z.string().regex(/^[a-zA-Z0-9_-]{1,128}$/, "must be 1-128 letters, digits, underscores or dashes");

const toolUseBlock = z.object({
  type: z.literal("tool_use"),
  id: z.string().min(1).max(256),
  name: z.string().min(1).max(256),
  input: z.record(z.string(), z.unknown()),
});

const toolResultBlock = z.object({
  type: z.literal("tool_result"),
  tool_use_id: z.string().min(1).max(256),
  content: z
    .union([
      z.string(),
      z.array(
        z.discriminatedUnion("type", [textBlock], {
          error: () => 'must be "text": tool results can only carry text on this server',
        }),
      ),
    ])
    .optional(),
  is_error: z.boolean().nullable().optional(),
});

/** An image: base64 bytes (decoded and checked in requests.ts); a URL source is refused there (egress). */
const imageBlock = z.object({
  type: z.literal("image"),
  source: z.discriminatedUnion("type", [
    z.object({
      type: z.literal("base64"),
      media_type: z.enum(["image/jpeg", "image/png", "image/gif", "image/webp"]),
      data: z.string(),
    }),
    z.object({ type: z.literal("url"), url: z.string() }),
  ]),
});

// Earlier turns' thinking is dropped from the prompt (Anthropic drops it from the context too).
const thinkingBlock = z.looseObject({ type: z.literal("thinking") });
const redactedThinkingBlock = z.looseObject({ type: z.literal("redacted_thinking") });

const contentBlock = z.discriminatedUnion(
  "type",
  [textBlock, imageBlock, toolUseBlock, toolResultBlock, thinkingBlock, redactedThinkingBlock],
  {
    error: () =>
      'must be "text", "image", "tool_use", "tool_result", "thinking" or "redacted_thinking": document and server-tool blocks are not supported',
  },
);

export const messageParamSchema = z.object({
  // The SDK's MessageParam also allows a "system" message in the list; it becomes a system turn.
  role: z.enum(["user", "assistant", "system"]),
  content: z.union([z.string(), z.array(contentBlock)]),
});

export type MessageParam = z.infer<typeof messageParamSchema>;
export type ContentBlock = z.infer<typeof contentBlock>;

const toolSchema = z.object({
  type: z
    .string()
    .refine(
      (type) => type === "custom",
      'must be "custom" or left out: server tools (web search, code execution, bash, text editor, ...) are not supported',
    )
    .nullable()
    .optional(),
  name: toolName,
  description: z.string().max(16_384).optional(),
  input_schema: z.record(z.string(), z.unknown()),
});

const toolChoiceSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("auto"), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal("any"), disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal("tool"), name: toolName, disable_parallel_tool_use: z.boolean().optional() }),
  z.object({ type: z.literal("none") }),
]);

/** The fields that decide the prompt: shared by /v1/messages and /v1/messages/count_tokens. */
const promptFields = {
  model: z.string().min(1).max(512),
  messages: z.array(messageParamSchema).min(1),
  system: z
    .union([z.string(), z.array(textBlock)])
    .nullable()
    .optional(),
  tools: z.array(toolSchema).max(128).nullable().optional(),
  tool_choice: toolChoiceSchema.nullable().optional(),
  output_config: z
    .object({
      effort: z.string().max(32).nullable().optional(),
      format: z
        .object({ type: z.literal("json_schema"), schema: z.record(z.string(), z.unknown()) })
        .nullable()
        .optional(),
    })
    .nullable()
    .optional(),
};

export const messagesSchema = z.looseObject({
  ...promptFields,
  max_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT),
  stop_sequences: z.array(z.string().min(1).max(1000)).max(64).nullable().optional(),
  temperature: finite().min(0).max(1).nullable().optional(),
  top_p: finite().min(0).max(1).nullable().optional(),
  top_k: z.number().int().min(0).max(1_000_000).nullable().optional(),
  metadata: z
    .object({ user_id: z.string().max(256).nullable().optional() })
    .nullable()
    .optional(),
  stream: z.boolean().nullable().optional(),
  /** freehold extension, as on OpenAI's API: what to do with a prompt longer than the context (docs/overflow.md). */
  truncation: z.enum(["error", "truncate-middle", "shift"]).nullable().optional(),
  /** Extended thinking: enabled with a token budget (reasoning is closed when spent), disabled, or adaptive. */
  thinking: z
    .discriminatedUnion("type", [
      z.looseObject({ type: z.literal("enabled"), budget_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT) }),
      z.looseObject({ type: z.literal("disabled") }),
      z.looseObject({ type: z.literal("adaptive") }),
    ])
    .nullable()
    .optional(),
});

export type MessagesBody = z.infer<typeof messagesSchema>;

export const countTokensSchema = z.looseObject(promptFields);

export type CountTokensBody = z.infer<typeof countTokensSchema>;
