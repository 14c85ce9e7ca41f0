/**
 * freehold as a library. Everything the CLI and server do is available here.
 * @example
 * import { Freehold } from "freehold";
 * const freehold = await Freehold.open();
 * const answer = await freehold.completeText({ model: "stories", prompt: "Once upon a time", maxTokens: 20, temperature: 0 });
 * console.log(answer.text);
 * await freehold.close();
 */
export { type Config, type ConfigOverrides, environmentKeys, loadConfig } from "./config/config.js";
export type {
  ChatEvent,
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  EmbeddingRequest,
  EmbeddingResult,
  FinishReason,
  FoldedAnswer,
  GenerateRequest,
  GenerationLimits,
  ModelInfo,
  ModelPort,
  Role,
  SamplingOptions,
  Usage,
} from "./core/chat.js";
export { foldChatEvents } from "./core/chat.js";
export * from "./core/errors.js";
export type { ImageFetcher, ImageFetchRecord } from "./core/imageFetch.js";
export { Engine, type EngineOptions, type ModelResolver, type ResolvedModel } from "./engine/engine.js";
export { Gateway } from "./gateway/gateway.js";
export * as gguf from "./gguf/index.js";
export { createApp } from "./http/app.js";
export { type ChatOptions, type CompleteOptions, Freehold, type OpenOptions } from "./library.js";
export { type RunningServer, startServer } from "./server.js";
export * from "./store/index.js";
export { DEMO_MODEL, ensureDemoModel, storeResolver } from "./storeAdapters.js";
