/**
 * The token loop: each generated token goes through a pipeline of small filters, and what comes out is the
 * request's events. Stages, in order: end-of-generation, logprobs, UTF-8 hold (utf8Hold.ts), tool call / JSON end
 * (toolGate.ts), stop sequences (stopFilter.ts). It knows no model: a Vocabulary turns tokens into text, so tests
 * drive it with made-up token streams.
 */
import { randomBytes } from "node:crypto";
import type { ChatEvent, FinishReason, GenerateRequest } from "../../core/chat.js";
import { forcesToolCall, parseToolCalls } from "../../core/tools.js";
import { LogprobTracker } from "./logprobs.js";
import { StopFilter } from "./stopFilter.js";
import { ToolGate, type ToolMode } from "./toolGate.js";
import { Utf8Hold } from "./utf8Hold.js";
import type { Vocabulary } from "./vocabulary.js";

export interface TokenLoopOptions {
  /** Tokens this answer may have (the request's limit within the context's room). */
  maxTokens: number;
  /** Stop strings the chat template ends a turn with (not reported as the caller's stop sequence). */
  templateStops: readonly string[];
  /** A grammar enforces a JSON answer: its closing bracket ends the answer. */
  json: boolean;
  /** The prompt's last tokens (context for the first tokens' logprob texts). */
  promptTail: readonly number[];
}

export function toolModeFor(request: GenerateRequest): ToolMode {
  if (request.kind !== "chat") return "text";
  if (forcesToolCall(request.tools, request.toolChoice)) return "tool";
  return (request.tools?.length ?? 0) > 0 && request.toolChoice !== "none" ? "undecided" : "text";
}

export class TokenLoop {
  /** Every token generated (the repeat penalties read it too); end-of-generation ones only past ignoreEos. */
  readonly generated: number[] = [];
  reason: FinishReason = "length";
  /** The caller's stop sequence that ended the answer, if one did. */
  stopSequence: string | undefined;
  private stoppedBySequence = false;
  private readonly utf8: Utf8Hold;
  private readonly gate: ToolGate;
  private readonly logprobs: LogprobTracker | undefined;
  private readonly text: StopFilter;

  constructor(
    private readonly vocabulary: Vocabulary,
    private readonly request: GenerateRequest,
    private readonly options: TokenLoopOptions,
    private readonly emit: (event: ChatEvent) => void,
  ) {
    this.utf8 = new Utf8Hold(vocabulary);
    const parallel = request.kind === "chat" && (request.parallelToolCalls ?? false);
    this.gate = new ToolGate(toolModeFor(request), parallel, options.json);
    this.logprobs = request.logprobs !== undefined ? new LogprobTracker(vocabulary, request.logprobs) : undefined;
    this.text = new StopFilter([...(request.limits.stop ?? []), ...options.templateStops], this.logprobs, emit);
  }

  get completionTokens(): number {
    return this.generated.length;
  }

  /** Feeds one generated token (with its candidates' probabilities when logprobs are wanted); false: the answer is over. */
  push(token: number, probabilities?: Map<number, number>): boolean {
    const eog = this.vocabulary.isEogToken(token);
    if (eog && !this.request.limits.ignoreEos) return this.end("stop");
    this.generated.push(token);
    const full = this.generated.length >= this.options.maxTokens;
    if (this.logprobs && probabilities && this.gate.mode !== "tool") {
      const before = [...this.options.promptTail.slice(-8), ...this.generated].slice(-9, -1);
      this.logprobs.add(token, probabilities, before);
    }
    let text = this.utf8.push(token, this.generated, full);
    if (text === undefined) return true;
    // Past end-of-generation (ignoreEos), its marker is not part of the answer.
    if (eog) text = "";
    const modeBefore = this.gate.mode;
    const gated = this.gate.push(text);
    // An answer that turns out to be a tool call has no token logprobs (OpenAI reports none for calls).
    if (modeBefore !== "tool" && this.gate.mode === "tool") this.logprobs?.clear();
    if (gated.text === null) {
      if (gated.ended) return this.end("stop");
      return full ? this.end("length") : true;
    }
    const stop = this.text.push(gated.text);
    if (stop.stopped || gated.ended) {
      if (stop.stopped) this.stoppedBySequence = true;
      if (stop.stop !== undefined && this.request.limits.stop?.includes(stop.stop)) this.stopSequence = stop.stop;
      if (gated.ended) this.text.flush();
      return this.end("stop");
    }
    return full ? this.end("length") : true;
  }

  /** The generation was cancelled: nothing more is sent. */
  cancel(): void {
    this.reason = "cancelled";
  }

  /** After the last token: emits a buffered tool call (or the text it turned out to be), or text held for stops. */
  finish(): void {
    if (this.reason === "cancelled") return;
    const buffered = this.gate.buffered;
    if (buffered) {
      const tools = this.request.kind === "chat" ? (this.request.tools ?? []) : [];
      const parallel = this.request.kind === "chat" && (this.request.parallelToolCalls ?? false);
      const calls = parseToolCalls(buffered, tools, parallel);
      if (calls) {
        for (const call of calls)
          this.emit({ type: "tool-call", call: { id: `call_${randomBytes(12).toString("hex")}`, ...call } });
        this.reason = "tool-calls";
      } else {
        this.emit({ type: "text-delta", text: buffered });
      }
    } else if (!this.stoppedBySequence) {
      this.text.flush();
    }
  }

  private end(reason: FinishReason): false {
    this.reason = reason;
    return false;
  }
}
