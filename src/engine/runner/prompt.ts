/**
 * The prompt stage: a request (chat history, template, tools, or a completion's text/tokens) → prompt tokens, and
 * the stop strings its chat template needs.
 */
import type { ChatHistoryItem, ChatWrapper, LlamaModel, Token } from "node-llama-cpp";
import type { ChatMessage, GenerateRequest } from "../../core/chat.js";
import { messagesWithTools } from "../../core/tools.js";
import { requestError } from "./errors.js";

/** The stop string the ChatML fallback needs when a model has no template (its markers are plain text then). */
export const FALLBACK_STOP = "<|im_end|>";

export interface Prompt {
  tokens: Token[];
  /** Stop strings the chat template ends a turn with (besides end-of-generation tokens). */
  stops: string[];
}

/** node-llama-cpp's chat history for our messages, with an empty model turn to generate into. */
export function toHistory(messages: readonly ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = [];
  for (const message of messages) {
    if (message.role === "system") history.push({ type: "system", text: message.content });
    else if (message.role === "assistant") history.push({ type: "model", response: [message.content] });
    else history.push({ type: "user", text: message.content });
  }
  history.push({ type: "model", response: [] });
  return history;
}

export type ChatFormat = "jinja" | "chatml-fallback" | "template-error";

export interface ChatTemplate {
  wrapper?: ChatWrapper;
  format: ChatFormat;
  /** Why the template cannot be used (format "template-error"). */
  error?: string;
}

/**
 * The chat wrapper for a model's template (or a profile's override); ChatML when the model has none. Templates come
 * from model files: untrusted. @huggingface/jinja interprets them in a sandbox with no access to JavaScript globals,
 * constructors or the process; anything that reaches for them fails to render.
 */
export function chatTemplateFor(
  nlc: typeof import("node-llama-cpp"),
  template: string | undefined,
  model: LlamaModel,
): ChatTemplate {
  if (!template) return { wrapper: new nlc.ChatMLChatWrapper(), format: "chatml-fallback" };
  try {
    return { wrapper: new nlc.JinjaTemplateChatWrapper({ template, tokenizer: model.tokenizer }), format: "jinja" };
  } catch (error) {
    return { format: "template-error", error: (error as Error).message.split("\n")[0] };
  }
}

/** What the prompt stage needs from a model: its tokenizer and BOS rule (LlamaModel has these). */
export type PromptModel = Pick<LlamaModel, "tokenize" | "tokenizer"> & {
  tokens: Pick<LlamaModel["tokens"], "bos" | "shouldPrependBosToken">;
};

export function buildPrompt(model: PromptModel, template: ChatTemplate, request: GenerateRequest): Prompt {
  if (request.kind === "completion") {
    // Token ids are used as they are (no BOS added).
    if (Array.isArray(request.prompt)) return { tokens: request.prompt as Token[], stops: [] };
    const tokens = model.tokenize(request.prompt, false);
    if (model.tokens.shouldPrependBosToken && model.tokens.bos !== null && tokens[0] !== model.tokens.bos)
      tokens.unshift(model.tokens.bos);
    return { tokens, stops: [] };
  }
  if (!template.wrapper) {
    throw requestError(
      `this model's chat template cannot be used (${template.error}); use /v1/completions instead`,
      "chat_template_error",
      400,
    );
  }
  let state: ReturnType<ChatWrapper["generateContextState"]>;
  try {
    const messages = messagesWithTools(
      request.messages,
      request.tools,
      request.toolChoice,
      request.parallelToolCalls ?? false,
    );
    state = template.wrapper.generateContextState({ chatHistory: toHistory(messages) });
  } catch (error) {
    throw requestError(
      `the model's chat template failed to render: ${(error as Error).message.split("\n")[0]}`,
      "chat_template_error",
      400,
    );
  }
  const stops: string[] = [];
  for (const trigger of state.stopGenerationTriggers) {
    if (trigger.values.every((value) => typeof value === "string")) stops.push(trigger.values.join(""));
  }
  if (template.format === "chatml-fallback") stops.push(FALLBACK_STOP);
  return { tokens: state.contextText.tokenize(model.tokenizer), stops };
}

/** Refuses prompts the model cannot take: token ids outside the vocabulary, or no room left to generate. */
export function checkPrompt(tokens: readonly Token[], vocabularySize: number, contextSize: number): void {
  for (const token of tokens) {
    if (token < 0 || token >= vocabularySize)
      throw requestError(`token id ${token} is out of range`, "invalid_token", 400, "prompt");
  }
  if (tokens.length >= contextSize) {
    throw requestError(
      `this model's context is ${contextSize} tokens; the prompt has ${tokens.length}. Shorten the prompt.`,
      "context_length_exceeded",
      400,
      "messages",
    );
  }
}
