import { z } from "zod";

/** Ollama's request shapes (docs/api.md). Unknown fields are accepted and ignored, as Ollama does. */

const finite = () => z.number().refine(Number.isFinite, "must be a finite number");

export const optionsSchema = z
  .looseObject({
    num_ctx: z
      .number()
      .int()
      .min(64)
      .max(1 << 22)
      .optional(),
    num_predict: z.number().int().min(-2).optional(),
    temperature: finite().min(0).max(2).optional(),
    top_k: z.number().int().min(0).optional(),
    top_p: finite().min(0).max(1).optional(),
    min_p: finite().min(0).max(1).optional(),
    seed: z.number().int().optional(),
    stop: z.array(z.string().max(1000)).max(16).optional(),
    repeat_penalty: finite().min(0).max(10).optional(),
    repeat_last_n: z.number().int().min(-1).max(65_536).optional(),
    presence_penalty: finite().min(-2).max(2).optional(),
    frequency_penalty: finite().min(-2).max(2).optional(),
    num_thread: z.number().int().min(0).max(1024).optional(),
    num_gpu: z.number().int().min(-1).max(10_000).optional(),
  })
  .optional();

const keepAlive = z.union([z.number(), z.string().max(32)]).optional();
const format = z.union([z.literal("json"), z.literal(""), z.record(z.string(), z.unknown())]).optional();

export const ollamaMessageSchema = z.looseObject({
  role: z.enum(["system", "user", "assistant", "tool"]),
  content: z.string(),
  /** Base64 images (Ollama's shape), decoded and checked in requests.ts. */
  images: z.array(z.string()).nullable().optional(),
  tool_calls: z
    .array(
      z.looseObject({
        function: z.object({
          name: z.string().min(1).max(64),
          arguments: z.record(z.string(), z.unknown()).optional(),
        }),
      }),
    )
    .max(128)
    .optional(),
  tool_name: z.string().max(64).optional(),
});

/** Ollama's own overflow switches (docs/overflow.md maps them to freehold's policies). */
const overflowFields = { truncate: z.boolean().optional(), shift: z.boolean().optional() };

/** Ollama's think: true/false, or a level (gpt-oss's "low", "medium", "high"). */
const think = z.union([z.boolean(), z.enum(["low", "medium", "high"])]).optional();

export const chatSchema = z.looseObject({
  model: z.string().min(1).max(512),
  messages: z.array(ollamaMessageSchema).optional(),
  stream: z.boolean().optional(),
  format,
  options: optionsSchema,
  keep_alive: keepAlive,
  tools: z
    .array(
      z.looseObject({
        type: z.literal("function"),
        function: z.looseObject({
          name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, "must be 1-64 letters, digits, underscores or dashes"),
          description: z.string().max(4096).optional(),
          parameters: z.record(z.string(), z.unknown()).optional(),
        }),
      }),
    )
    .max(128)
    .nullable()
    .optional(),
  think,
  ...overflowFields,
  logprobs: z.boolean().optional(),
  top_logprobs: z.number().int().min(0).max(20).optional(),
});

export type OllamaChatBody = z.infer<typeof chatSchema>;

export const generateSchema = z.looseObject({
  model: z.string().min(1).max(512),
  prompt: z.string().optional(),
  suffix: z.string().optional(),
  system: z.string().optional(),
  template: z.string().optional(),
  context: z.array(z.number().int()).optional(),
  raw: z.boolean().optional(),
  stream: z.boolean().optional(),
  format,
  options: optionsSchema,
  keep_alive: keepAlive,
  think,
  ...overflowFields,
  logprobs: z.boolean().optional(),
  top_logprobs: z.number().int().min(0).max(20).optional(),
  /** Base64 images (Ollama's shape), decoded and checked in requests.ts. */
  images: z.array(z.string()).nullable().optional(),
});

export type OllamaGenerateBody = z.infer<typeof generateSchema>;

export const embedSchema = z.looseObject({
  model: z.string().min(1).max(512),
  input: z.union([z.string(), z.array(z.string()).min(1).max(2048)]),
  truncate: z.boolean().optional(),
  options: optionsSchema,
  keep_alive: keepAlive,
  dimensions: z.number().int().min(1).optional(),
});

export const legacyEmbeddingsSchema = z.looseObject({
  model: z.string().min(1).max(512),
  prompt: z.string(),
  options: optionsSchema,
  keep_alive: keepAlive,
});

export const modelNameSchema = z.looseObject({
  model: z.string().min(1).max(512).optional(),
  name: z.string().min(1).max(512).optional(),
});

export const copySchema = z.object({ source: z.string().min(1).max(512), destination: z.string().min(1).max(512) });
