import type { Sample } from "./sse.js";

export interface ChatMessage {
  role: "user" | "assistant";
  content: string;
}

/**
 * "freehold" is freehold on its node-llama-cpp engine (the default); "freehold/llama-server" is freehold with
 * FREEHOLD_ENGINE=llama-server, hosting the model in the same llama-server binary the bench runs directly.
 */
export type Engine = "freehold" | "freehold/llama-server" | "node-llama-cpp" | "llama-server";

/** One engine at one thread setting, started and loaded, ready to time generations one after another. */
export interface BenchSystem {
  engine: Engine;
  /** What was asked for: a thread count, or "auto" (freehold's own choice). */
  requested: number | "auto";
  /** The threads it really uses, once known. */
  threads: number | undefined;
  /** Base URL of its OpenAI-compatible API (HTTP servers only). */
  url?: string;
  /** Generates exactly `tokens` tokens (EOS ignored) after `prompt` at temperature 0, and times it. */
  run(prompt: string, tokens: number): Promise<Sample>;
  /** A streamed chat turn (HTTP servers only): exactly `tokens` tokens at temperature 0, prompt cache on. */
  chat?(messages: ChatMessage[], tokens: number): Promise<Sample>;
  close(): Promise<void>;
}

export function systemLabel(system: Pick<BenchSystem, "engine" | "requested">): string {
  return system.requested === "auto" ? `${system.engine} auto` : `${system.engine} t${system.requested}`;
}
