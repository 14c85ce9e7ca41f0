/**
 * Reading llama-server's streamed /completion answer into the runner protocol's events: text deltas (with logprobs),
 * tool calls recognised from the text, the finish reason and usage with timings. llama-server applies the stop
 * strings itself; this ends the answer where a constrained JSON value ends, and turns a tool call's JSON into calls.
 */
import { randomBytes } from "node:crypto";
import type { ChatEvent, FinishReason, TokenLogprob } from "../../core/chat.js";
import { JsonEndTracker } from "../../core/jsonEnd.js";
import { forcesToolCall, parseToolCalls } from "../../core/tools.js";
import { type LlamaServerClient, LlamaServerHttpError } from "./llamaServerClient.js";
import { type CompletionChunk, chatOf, type GenerateMessage, toLogprob, translateError } from "./llamaServerWire.js";

export interface StreamArguments {
  client: LlamaServerClient;
  body: Record<string, unknown>;
  message: GenerateMessage;
  /** A JSON schema constrains the output: the answer ends where its JSON value ends. */
  structured: boolean;
  /** The prompt's tokens as freehold counted them (0 with images: llama-server reports the count). */
  promptLength: number;
  /** When the request started (performance.now()), for the timings. */
  started: number;
  signal: AbortSignal;
  emit: (event: ChatEvent) => void;
  /** A transport error: waits for the runner to go down if llama-server died, else throws runner_error. */
  crashedOr: (error: unknown) => Promise<never>;
}

export async function streamCompletion({
  client,
  body,
  message,
  structured,
  promptLength,
  started,
  signal,
  emit,
  crashedOr,
}: StreamArguments): Promise<void> {
  const toolsOffered =
    message.kind === "chat" && (chatOf(message).tools?.length ?? 0) > 0 && chatOf(message).toolChoice !== "none";
  let toolMode: "undecided" | "tool" | "text" = forcesToolCall(chatOf(message).tools, chatOf(message).toolChoice)
    ? "tool"
    : toolsOffered
      ? "undecided"
      : "text";
  let toolBuffer = "";
  let jsonTracker = structured || toolMode === "tool" ? new JsonEndTracker() : undefined;
  let reason: FinishReason = "length";
  let stopSequence: string | undefined;
  let completionTokens = 0;
  let promptTokens = promptLength;
  let cachedTokens = 0;
  let firstTokenAt = 0;
  let promptMs: number | undefined;
  const pendingLogprobs: TokenLogprob[] = [];
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  signal.addEventListener("abort", onAbort, { once: true });
  const send = (text: string) => {
    const entries = pendingLogprobs.splice(0);
    if (text || entries.length)
      emit(entries.length ? { type: "text-delta", text, logprobs: entries } : { type: "text-delta", text });
  };
  try {
    if (signal.aborted) {
      reason = "cancelled";
      return;
    }
    let stream: AsyncGenerator<CompletionChunk>;
    try {
      stream = client.events<CompletionChunk>("/completion", body, controller.signal);
      for await (const chunk of stream) {
        if (signal.aborted) {
          reason = "cancelled";
          break;
        }
        if (chunk.tokens_evaluated !== undefined) promptTokens = chunk.tokens_evaluated;
        if (chunk.stop) {
          completionTokens = chunk.tokens_predicted ?? completionTokens;
          cachedTokens = chunk.timings?.cache_n ?? 0;
          promptMs = chunk.timings?.prompt_ms;
          if (chunk.stop_type === "eos") reason = "stop";
          else if (chunk.stop_type === "word") {
            reason = "stop";
            if (chunk.stopping_word && message.limits.stop?.includes(chunk.stopping_word))
              stopSequence = chunk.stopping_word;
          } else reason = "length";
          if (chunk.content) {
            // The last piece (rare): pass it through the same path below.
          } else break;
        }
        const tokensInChunk = chunk.tokens?.length ?? (chunk.content ? 1 : 0);
        if (!chunk.stop) completionTokens += tokensInChunk;
        if (completionTokens > 0 && firstTokenAt === 0) firstTokenAt = performance.now();
        if (message.logprobs !== undefined && chunk.completion_probabilities && toolMode !== "tool")
          for (const entry of chunk.completion_probabilities) pendingLogprobs.push(toLogprob(entry, message.logprobs));
        let text = chunk.content;
        if (toolMode === "undecided") {
          toolBuffer += text;
          const start = toolBuffer.trimStart();
          if (start.length === 0) continue;
          toolMode =
            start.startsWith("{") || (chatOf(message).parallelToolCalls && start.startsWith("[")) ? "tool" : "text";
          text = toolBuffer;
          toolBuffer = "";
          if (toolMode === "tool") {
            jsonTracker ??= new JsonEndTracker();
            pendingLogprobs.length = 0;
          }
        }
        const jsonEnd = jsonTracker?.push(text) ?? -1;
        if (jsonEnd >= 0) text = text.slice(0, jsonEnd);
        if (toolMode === "tool") {
          toolBuffer += text;
          if (jsonEnd >= 0) {
            reason = "stop";
            break;
          }
          continue;
        }
        // llama-server applies the stop strings itself, holding back partial matches.
        send(text);
        if (jsonEnd >= 0) {
          reason = "stop";
          break;
        }
        if (chunk.stop) break;
      }
    } catch (error) {
      if (signal.aborted) {
        reason = "cancelled";
      } else if (error instanceof LlamaServerHttpError) {
        throw translateError(error);
      } else {
        await crashedOr(error);
      }
    }
    if (toolBuffer && reason !== "cancelled") {
      const calls = parseToolCalls(toolBuffer, chatOf(message).tools ?? [], chatOf(message).parallelToolCalls ?? false);
      if (calls) {
        for (const call of calls)
          emit({ type: "tool-call", call: { id: `call_${randomBytes(12).toString("hex")}`, ...call } });
        reason = "tool-calls";
      } else {
        emit({ type: "text-delta", text: toolBuffer });
      }
    } else if (pendingLogprobs.length > 0) {
      send("");
    }
  } finally {
    signal.removeEventListener("abort", onAbort);
    controller.abort();
  }
  const now = performance.now();
  const firstAt = firstTokenAt || now;
  emit({
    type: "usage",
    usage: { promptTokens, completionTokens, cachedTokens },
    timing: {
      timeToFirstTokenMs: firstAt - started,
      promptMs: promptMs ?? firstAt - started,
      generationMs: now - firstAt,
    },
  });
  emit(stopSequence !== undefined ? { type: "finish", reason, stopSequence } : { type: "finish", reason });
}
