import {
  type ChatImage,
  type ChatMessage,
  type ChatRequest,
  type GenerateRequest,
  type GenerationLimits,
  type LoadSettings,
  type ReasoningOptions,
  type ResponseFormat,
  reasoningForEffort,
  type SamplingOptions,
} from "../../core/chat.js";
import { parseKeepAlive } from "../../core/duration.js";
import { InvalidRequestError } from "../../core/errors.js";
import { prepareJsonSchema } from "../../core/jsonSchema.js";
import { checkImageCount, decodeBase64Image, MAX_IMAGES } from "../images.js";
import { ollamaOverflow } from "./overflow.js";
import type { OllamaChatBody, OllamaGenerateBody } from "./schemas.js";

type Options = NonNullable<OllamaChatBody["options"]>;

/** Ollama's defaults (api.DefaultOptions), applied where a request leaves an option out. */
const defaults = { temperature: 0.8, topK: 40, topP: 0.9, repeatPenalty: 1.1, repeatLastN: 64 } as const;

function sampling(options: Options | undefined): SamplingOptions {
  const o = options ?? {};
  const result: SamplingOptions = {
    temperature: o.temperature ?? defaults.temperature,
    topK: o.top_k ?? defaults.topK,
    topP: o.top_p ?? defaults.topP,
    repeatPenalty: o.repeat_penalty ?? defaults.repeatPenalty,
    repeatLastN: o.repeat_last_n === -1 ? 65_536 : (o.repeat_last_n ?? defaults.repeatLastN),
  };
  if (o.min_p !== undefined) result.minP = o.min_p;
  if (o.seed !== undefined) result.seed = o.seed;
  if (o.presence_penalty !== undefined) result.presencePenalty = o.presence_penalty;
  if (o.frequency_penalty !== undefined) result.frequencyPenalty = o.frequency_penalty;
  return result;
}

function limits(options: Options | undefined): GenerationLimits {
  const result: GenerationLimits = {};
  // -1: no limit; -2: fill the context; both end at the context's end here.
  if (options?.num_predict !== undefined && options.num_predict >= 0) result.maxTokens = options.num_predict;
  if (options?.stop && options.stop.length > 0) result.stop = options.stop;
  return result;
}

/** Ollama's `format`: "json", or a JSON schema; enforced by a grammar. */
function responseFormat(format: OllamaChatBody["format"]): { responseFormat?: ResponseFormat } {
  if (format === undefined || format === "") return {};
  if (format === "json") return { responseFormat: { type: "json" } };
  return { responseFormat: { type: "json-schema", schema: prepareJsonSchema(format, "format") } };
}

/** num_ctx, num_thread, num_gpu: how the model is loaded; a different value reloads it (as Ollama does). */
function load(options: Options | undefined): { load?: LoadSettings } {
  if (!options) return {};
  const settings: LoadSettings = {};
  if (options.num_ctx !== undefined) settings.contextSize = options.num_ctx;
  if (options.num_thread !== undefined) settings.threads = options.num_thread;
  // -1: as many layers as fit (Ollama's default); 0: CPU only.
  if (options.num_gpu !== undefined) settings.gpuLayers = options.num_gpu < 0 ? "auto" : options.num_gpu;
  return Object.keys(settings).length > 0 ? { load: settings } : {};
}

function keepAlive(value: number | string | undefined): { keepAliveMs?: number } {
  return value === undefined ? {} : { keepAliveMs: parseKeepAlive(value) };
}

function logprobs(body: { logprobs?: boolean | undefined; top_logprobs?: number | undefined }): { logprobs?: number } {
  if (body.top_logprobs !== undefined && body.logprobs !== true)
    throw new InvalidRequestError("top_logprobs needs logprobs: true", "top_logprobs");
  return body.logprobs ? { logprobs: body.top_logprobs ?? 0 } : {};
}

/**
 * Ollama's think → a reasoning budget: false closes reasoning as soon as it opens, a level is a budget
 * (REASONING_EFFORT_BUDGETS), true or absent leaves it to max tokens. The reasoning is Ollama's message.thinking.
 */
function think(value: OllamaChatBody["think"]): { reasoning?: ReasoningOptions } {
  if (value === undefined) return {};
  // true: reason with no budget (an empty ReasoningOptions), which a remote Ollama gets as think: true.
  if (value === true) return { reasoning: {} };
  return { reasoning: value === false ? { budgetTokens: 0 } : reasoningForEffort(value) };
}

/** Ollama's `images`: base64 strings, decoded and checked; only a user turn may carry them. */
function images(list: string[] | null | undefined, field: string, allowed: boolean): { images?: ChatImage[] } {
  if (!list || list.length === 0) return {};
  if (!allowed) throw new InvalidRequestError(`${field}: only user messages may carry images`, field);
  if (list.length > MAX_IMAGES)
    throw new InvalidRequestError(
      `${field}: ${list.length} images; at most ${MAX_IMAGES} per request`,
      field,
      "too_many_images",
    );
  return { images: list.map((data, index) => decodeBase64Image(data, `${field}[${index}]`)) };
}

export function toChatRequest(body: OllamaChatBody): ChatRequest {
  const messages: ChatMessage[] = (body.messages ?? []).map((message, index) => ({
    role: message.role,
    content: message.content,
    ...images(message.images, `messages[${index}].images`, message.role === "user"),
    ...(message.tool_name ? { name: message.tool_name } : {}),
    ...(message.tool_calls
      ? {
          toolCalls: message.tool_calls.map((call, callIndex) => ({
            id: `call_${index}_${callIndex}`,
            name: call.function.name,
            arguments: JSON.stringify(call.function.arguments ?? {}),
          })),
        }
      : {}),
  }));
  checkImageCount(messages);
  // Ollama has no tool_choice: tools are offered and the model decides.
  const tools =
    body.tools && body.tools.length > 0
      ? {
          tools: body.tools.map((tool, toolIndex) => ({
            name: tool.function.name,
            ...(tool.function.description ? { description: tool.function.description } : {}),
            parameters: prepareJsonSchema(
              tool.function.parameters ?? { type: "object", properties: {} },
              `tools[${toolIndex}].function.parameters`,
            ),
          })),
          toolChoice: "auto" as const,
          parallelToolCalls: true,
        }
      : {};
  return { kind: "chat", messages, ...tools, ...common(body) };
}

/** What /api/chat and /api/generate map alike: options, format, keep_alive, logprobs, and how the answer is taken. */
function common(body: OllamaChatBody | OllamaGenerateBody) {
  return {
    model: body.model,
    sampling: sampling(body.options),
    limits: limits(body.options),
    ...responseFormat(body.format),
    ...keepAlive(body.keep_alive),
    ...logprobs(body),
    ...think(body.think),
    ...ollamaOverflow(body),
    ...load(body.options),
    // Ollama streams unless told otherwise; a whole answer may be fetched whole from a remote provider.
    ...(body.stream === false ? { wholeAnswer: true } : {}),
  };
}

/**
 * /api/generate: with `raw` the prompt goes to the model as it is; otherwise it is the user turn of a chat (with
 * `system` before it) rendered by the model's own template.
 */
export function toGenerateRequest(body: OllamaGenerateBody): GenerateRequest {
  if (body.template !== undefined && body.template !== "") {
    throw new InvalidRequestError(
      "template overrides (Ollama's Go templates) are not supported; send raw: true with a prompt you have formatted",
      "template",
    );
  }
  if (body.suffix !== undefined && body.suffix !== "") {
    throw new InvalidRequestError("suffix (fill-in-the-middle) is not supported by this model", "suffix");
  }
  if (body.context !== undefined && body.context.length > 0) {
    throw new InvalidRequestError(
      "context (the deprecated token history) is not supported; send the conversation to /api/chat",
      "context",
    );
  }
  const base = common(body);
  if (body.raw && (body.images?.length ?? 0) > 0)
    throw new InvalidRequestError(
      "images need the model's chat template; send them without raw: true (or to /api/chat)",
      "images",
    );
  if (body.raw) return { kind: "completion", prompt: body.prompt ?? "", ...base };
  const messages: ChatMessage[] = [];
  if (body.system) messages.push({ role: "system", content: body.system });
  messages.push({ role: "user", content: body.prompt ?? "", ...images(body.images, "images", true) });
  checkImageCount(messages, "images");
  return { kind: "chat", messages, ...base };
}
