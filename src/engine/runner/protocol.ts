import type { ChatEvent, GenerateRequest } from "../../core/chat.js";
import type { ErrorFields } from "../../core/errors.js";
import type { FlashAttentionMode, KvCacheType } from "../../core/memorySettings.js";

/**
 * The lean protocol between the server and a runner child process (Node IPC, structured clone).
 * Per token the runner sends nothing by itself: events are batched into one message per flush interval.
 */

export interface LoadOptions {
  /** Model files in shard order. */
  paths: string[];
  contextSize: number;
  threads: number;
  /** Parallel sequences (slots) in the context. */
  sequences: number;
  batchSize: number;
  /** Layers to offload to a GPU when one is present. */
  gpuLayers: "auto" | "max" | number;
  /** Milliseconds to gather events into one IPC message (0 = send each at once). */
  flushIntervalMs: number;
  /** A chat template (Jinja) to use instead of the model's own (a profile's override). */
  chatTemplate?: string;
  /**
   * A draft model for speculative decoding (a profile's `draft`): its files in shard order, and the names of it and of
   * the model it drafts for (for errors).
   */
  draft?: { paths: string[]; name?: string; model?: string };
  /** The KV cache's element type (K and V alike). */
  kvCacheType: KvCacheType;
  flashAttention: FlashAttentionMode;
  /** Which engine hosts the model in this runner (default node-llama-cpp). */
  engine?: EngineKind;
  /** The llama-server binary (engine "llama-server"). */
  llamaServer?: string;
  /** A multimodal projector (mmproj GGUF) beside the model: images become possible (llama-server only). */
  projector?: string;
}

/** The kinds of runner: node-llama-cpp in-process, or llama.cpp's own llama-server as a child of the runner. */
export type EngineKind = "node-llama-cpp" | "llama-server";

/**
 * What a runner generates for: the core request as the engine resolved it (its model's profile applied), typed as
 * the rest of the server sees it. Structured clone carries it as it is; the runner reads the fields it knows.
 */
export type RunnerRequest = GenerateRequest;

export type ParentMessage =
  | { type: "load"; options: LoadOptions }
  | { type: "generate"; id: number; request: RunnerRequest }
  | { type: "embed"; id: number; input: string[] }
  | { type: "rank"; id: number; query: string; documents: string[] }
  | { type: "count"; id: number; request: RunnerRequest }
  | { type: "cancel"; id: number }
  | { type: "shutdown" };

export interface LoadedInfo {
  /** GPU memory the model and its context took when loaded (0 on CPU). */
  vramBytes: number;
  contextSize: number;
  trainContextSize: number;
  threads: number;
  /** Threads per decode while several requests generate: since threads stopped following the load (docs/threads.md), `threads`; kept for /api/ps `details.threads_when_busy`. */
  busyThreads: number;
  sequences: number;
  vocabularySize: number;
  embeddingLength: number;
  hasChatTemplate: boolean;
  chatFormat: string;
  /** How tool calls are written: the model's own format (where it comes from, what it looks like) or "json". */
  toolFormat?: string;
  backend: string;
  /** Layers offloaded to the GPU (0 on CPU). */
  gpuLayers: number;
  loadMs: number;
  /** Flash attention as asked ("auto" stays "auto"; "on" on a model that cannot use it reads "off"). */
  flashAttention: FlashAttentionMode;
  /** The engine hosting the model. */
  engine: EngineKind;
  /** The model takes images (a projector is loaded). */
  vision: boolean;
  /** Processes the runner started (llama-server): the server kills them if the runner dies without doing so. */
  childPids: number[];
}

/** An error crossing the process boundary: the same fields as a stream's error event (errors.ts codes both). */
export type ErrorPayload = ErrorFields;

export type RunnerMessage =
  | { type: "ready" }
  | { type: "loaded"; info: LoadedInfo }
  | { type: "load-failed"; error: ErrorPayload }
  | { type: "events"; id: number; events: ChatEvent[] }
  | { type: "done"; id: number }
  | { type: "failed"; id: number; error: ErrorPayload }
  | { type: "embeddings"; id: number; vectors: number[][]; promptTokens: number }
  | { type: "ranked"; id: number; scores: number[]; promptTokens: number }
  | { type: "counted"; id: number; promptTokens: number };
