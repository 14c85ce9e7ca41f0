import { z } from "zod";

/** Requests as OpenAI documents them, plus the llama.cpp-style extensions people use (top_k, min_p, ...). */

const finite = () => z.number().refine(Number.isFinite, "must be a finite number");
const MAX_TOKENS_LIMIT = 1_048_576;
/** Tokens one request may bias: OpenAI's own limit is 300 or so; this bounds the work per request. */
const MAX_LOGIT_BIAS = 1024;

const textPart = z.object({ type: z.literal("text"), text: z.string() });
/** An image as OpenAI sends it: `image_url.url` a data: URI (decoded and checked in requests.ts). */
const imagePart = z.object({
  type: z.literal("image_url"),
  image_url: z.object({ url: z.string().min(1), detail: z.enum(["auto", "low", "high"]).optional() }),
});
const messageContent = z.union([z.string(), z.array(z.discriminatedUnion("type", [textPart, imagePart])), z.null()]);

const toolName = z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, underscores or dashes");

export const chatMessageSchema = z.object({
  role: z.enum(["system", "developer", "user", "assistant", "tool"]),
  content: messageContent.optional(),
  name: z.string().max(256).optional(),
  tool_call_id: z.string().max(256).optional(),
  tool_calls: z
    .array(
      z.object({
        id: z.string().max(256),
        type: z.literal("function"),
        function: z.object({ name: toolName, arguments: z.string() }),
      }),
    )
    .max(128)
    .optional(),
});

export const toolSchema = z.object({
  type: z.literal("function"),
  function: z.object({
    name: toolName,
    description: z.string().max(4096).optional(),
    parameters: z.record(z.string(), z.unknown()).optional(),
    strict: z.boolean().nullable().optional(),
  }),
});

const toolChoiceSchema = z.union([
  z.enum(["none", "auto", "required"]),
  z.object({ type: z.literal("function"), function: z.object({ name: toolName }) }),
]);

const stopString = z.string().max(1000);
const stopSchema = z.union([stopString, z.array(stopString).max(16), z.null()]).optional();

const samplingFields = {
  model: z.string().min(1).max(512),
  max_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).nullable().optional(),
  temperature: finite().min(0).max(2).nullable().optional(),
  top_p: finite().min(0).max(1).nullable().optional(),
  top_k: z.number().int().min(0).max(1_000_000).nullable().optional(),
  min_p: finite().min(0).max(1).nullable().optional(),
  frequency_penalty: finite().min(-2).max(2).nullable().optional(),
  presence_penalty: finite().min(-2).max(2).nullable().optional(),
  repeat_penalty: finite().min(0).max(10).nullable().optional(),
  repeat_last_n: z.number().int().min(0).max(65_536).nullable().optional(),
  seed: z
    .number()
    .int()
    .min(-(2 ** 53))
    .max(2 ** 53)
    .nullable()
    .optional(),
  stop: stopSchema,
  n: z
    .number()
    .int()
    .min(1)
    .refine(
      (n) => n === 1,
      "several choices (n > 1) are not supported: send one request per answer you want (with different seeds)",
    )
    .nullable()
    .optional(),
  stream: z.boolean().nullable().optional(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullable().optional(),
  ignore_eos: z.boolean().optional(),
  keep_alive: z.union([z.number(), z.string().max(32)]).optional(),
  user: z.string().max(256).optional(),
  /** freehold extension: what to do with a prompt longer than the context (docs/overflow.md). */
  truncation: z.enum(["error", "truncate-middle", "shift"]).nullable().optional(),
  /** Token id → bias added to its logit (-100 bans, 100 forces); ids are checked against the model's vocabulary. */
  logit_bias: z
    .record(
      z.string().regex(/^(0|[1-9][0-9]{0,9})$/, "keys must be token ids (decimal integers, no sign or leading zeros)"),
      finite().min(-100).max(100),
    )
    .refine((bias) => Object.keys(bias).length <= MAX_LOGIT_BIAS, `at most ${MAX_LOGIT_BIAS} tokens may be biased`)
    .nullable()
    .optional(),
};

export const chatCompletionSchema = z.looseObject({
  ...samplingFields,
  messages: z.array(chatMessageSchema).min(1),
  max_completion_tokens: z.number().int().min(1).max(MAX_TOKENS_LIMIT).nullable().optional(),
  tools: z.array(toolSchema).max(128).nullable().optional(),
  tool_choice: toolChoiceSchema.nullable().optional(),
  parallel_tool_calls: z.boolean().nullable().optional(),
  /** How long a reasoning model may think: a token budget per level (core REASONING_EFFORT_BUDGETS). */
  reasoning_effort: z.enum(["none", "minimal", "low", "medium", "high"]).nullable().optional(),
  logprobs: z.boolean().nullable().optional(),
  top_logprobs: z.number().int().min(0).max(20).nullable().optional(),
  response_format: z
    .discriminatedUnion("type", [
      z.object({ type: z.literal("text") }),
      z.object({ type: z.literal("json_object") }),
      z.object({
        type: z.literal("json_schema"),
        json_schema: z.looseObject({
          name: z.string().max(64),
          description: z.string().optional(),
          schema: z.record(z.string(), z.unknown()).optional(),
          strict: z.boolean().nullable().optional(),
        }),
      }),
    ])
    .nullable()
    .optional(),
});

export type ChatCompletionBody = z.infer<typeof chatCompletionSchema>;

/** Chat fields this server does not support yet: refused clearly rather than silently ignored. */
export const unsupportedChatFields: Record<string, string> = {
  functions: "functions (the legacy form of tools) is not supported; send tools",
  function_call: "function_call (the legacy form of tool_choice) is not supported",
  audio: "audio output is not supported",
  prediction: "predicted outputs are not supported",
};

const tokenIds = z
  .array(
    z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
  )
  .min(1);

export const completionSchema = z.looseObject({
  ...samplingFields,
  prompt: z.union([z.string(), z.array(z.string()).length(1), tokenIds, z.array(tokenIds).length(1)]),
  echo: z.literal(false).nullable().optional(),
  suffix: z.null().optional(),
  best_of: z.literal(1).nullable().optional(),
  /** The legacy form: how many alternatives per token (OpenAI allows up to 5; we allow 20, as chat does). */
  logprobs: z.number().int().min(0).max(20).nullable().optional(),
});

export type CompletionBody = z.infer<typeof completionSchema>;

export const embeddingSchema = z.looseObject({
  model: z.string().min(1).max(512),
  input: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(2048)]),
  encoding_format: z.enum(["float", "base64"]).optional(),
  dimensions: z.number().int().min(1).optional(),
  user: z.string().max(256).optional(),
});

export type EmbeddingBody = z.infer<typeof embeddingSchema>;
