/**
 * The token loop: each generated token goes through a pipeline of small filters, and what comes out is the
 * request's events. Stages, in order: end-of-generation, logprobs, UTF-8 hold (utf8Hold.ts), reasoning
 * (reasoning.ts: the thought block goes out as reasoning, and its budget forces it closed), tool call / JSON end
 * (toolGate.ts), stop sequences (stopFilter.ts): those after reasoning see only the answer. It knows no model: a Vocabulary turns tokens into text, so tests
 * drive it with made-up token streams.
 */
import { randomBytes } from "node:crypto";
import type { ChatEvent, FinishReason, GenerateRequest } from "../../core/chat.js";
import { JsonEndTracker } from "../../core/jsonEnd.js";
import type { NativeToolCallParser } from "../../core/toolFormat.js";
import { forcesToolCall, parseToolCalls } from "../../core/tools.js";
import { LogprobTracker } from "./logprobs.js";
import { type ReasoningMarkers, ReasoningSplitter } from "./reasoning.js";
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
  /**
   * Tool calls in the model's own format (nativeTools.ts): its parser reads the answer before the tool gate, which
   * then passes text. `forced`: the prompt ends with the call's opener and a grammar writes the call's JSON object,
   * whose end ends the answer.
   */
  native?: { parser: NativeToolCallParser; forced: boolean };
  /** Separate reasoning marked this way from the answer (chat); left out, all text is answer (completions). */
  reasoning?: ReasoningMarkers;
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
  private readonly callEnd = new JsonEndTracker();
  private readonly splitter: ReasoningSplitter | undefined;
  private reasoningTokens = 0;
  /** Text to put into the model's context instead of its next token (a forced end of reasoning). */
  private injection: string | undefined;

  constructor(
    private readonly vocabulary: Vocabulary,
    private readonly request: GenerateRequest,
    private readonly options: TokenLoopOptions,
    private readonly emit: (event: ChatEvent) => void,
  ) {
    this.utf8 = new Utf8Hold(vocabulary);
    const parallel = request.kind === "chat" && (request.parallelToolCalls ?? false);
    this.gate = new ToolGate(options.native ? "text" : toolModeFor(request), parallel, options.json);
    this.logprobs = request.logprobs !== undefined ? new LogprobTracker(vocabulary, request.logprobs) : undefined;
    this.text = new StopFilter([...(request.limits.stop ?? []), ...options.templateStops], this.logprobs, emit);
    this.splitter = options.reasoning ? new ReasoningSplitter(options.reasoning) : undefined;
  }

  /**
   * The text the model's context needs next in place of the token it just sampled (the closing marker when the
   * reasoning budget is spent), once. The caller tokenizes it, evaluates it, and reports the tokens to `injected`.
   */
  takeInjection(): string | undefined {
    const text = this.injection;
    this.injection = undefined;
    return text;
  }

  /** Tokens put into the context by `takeInjection`: counted as generated (they are in the answer's context). */
  injected(tokens: readonly number[]): void {
    this.generated.push(...tokens);
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
    if (this.logprobs && probabilities && this.gate.mode !== "tool" && !this.options.native?.parser.calling) {
      const before = [...this.options.promptTail.slice(-8), ...this.generated].slice(-9, -1);
      this.logprobs.add(token, probabilities, before);
    }
    let text = this.utf8.push(token, this.generated, full);
    if (text === undefined) return true;
    // Past end-of-generation (ignoreEos), its marker is not part of the answer.
    if (eog) text = "";
    // Reasoning first: stops, JSON ends and tool calls (native or not) apply to the answer only.
    let separated = false;
    if (this.splitter) {
      const wasReasoning = this.splitter.reasoning;
      text = this.separateReasoning(text);
      separated = wasReasoning || this.splitter.reasoning;
      if (separated && text === "") return full ? this.end("length") : true;
    }
    if (this.options.native) {
      // A token that was partly reasoning reaches the native parser as its answer part only.
      const native = this.pushNative(text, eog, full, separated ? text : undefined);
      if (typeof native === "boolean") return native;
      text = native;
    }
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
      this.noteStop(stop);
      if (gated.ended) this.text.flush();
      return this.end("stop");
    }
    return full ? this.end("length") : true;
  }

  /**
   * The native format's stage: the token's text as written (special tokens spelled out, so markers such as
   * `[TOOL_CALLS]` match) goes to the parser, and what it releases goes on as the answer. Returns the loop's answer
   * when the token is taken here (inside a call), else the released text to go on through the gate.
   */
  private pushNative(visible: string, eog: boolean, full: boolean, writtenOverride?: string): boolean | string {
    const { parser, forced } = this.options.native!;
    const tokens = this.utf8.released;
    const before = this.generated.slice(Math.max(0, this.generated.length - tokens.length - 8), -tokens.length);
    const written = writtenOverride ?? (eog ? "" : this.vocabulary.detokenize(tokens, true, before));
    const wasCalling = parser.calling;
    const released = parser.push(written, visible);
    if (!parser.calling) return released;
    // The text before the call goes out now; the call's tokens carry no logprobs (OpenAI reports none for calls).
    if (released) {
      const stop = this.text.push(released);
      if (stop.stopped) {
        this.noteStop(stop);
        return this.end("stop");
      }
    }
    if (!wasCalling) this.logprobs?.clear();
    // A forced call's grammar would allow whitespace after the object forever: the object's end ends the answer.
    if (forced && this.callEnd.push(written) >= 0) return this.end("stop");
    return full ? this.end("length") : true;
  }

  private noteStop(stop: { stopped: boolean; stop?: string }): void {
    if (stop.stopped) this.stoppedBySequence = true;
    if (stop.stop !== undefined && this.request.limits.stop?.includes(stop.stop)) this.stopSequence = stop.stop;
  }

  /** Sends the reasoning in `text`; returns the answer's part. Ends reasoning when its budget is spent. */
  private separateReasoning(text: string): string {
    const splitter = this.splitter!;
    const wasReasoning = splitter.reasoning;
    const { reasoning, answer } = splitter.push(text);
    if (wasReasoning || splitter.reasoning) this.reasoningTokens++;
    let thought = reasoning;
    const budget = this.request.reasoning?.budgetTokens;
    if (splitter.reasoning && budget !== undefined && this.reasoningTokens >= budget) {
      thought += splitter.close();
      this.injection = `${this.options.reasoning!.close}\n\n`;
    }
    if (thought) this.emit({ type: "reasoning", text: thought });
    // A reasoning token's logprobs are not the answer's.
    if (!answer && (wasReasoning || splitter.reasoning)) this.logprobs?.clear();
    return answer;
  }

  /** The generation was cancelled: nothing more is sent. */
  cancel(): void {
    this.reason = "cancelled";
  }

  /** After the last token: emits a buffered tool call (or the text it turned out to be), or text held for stops. */
  finish(): void {
    if (this.reason === "cancelled") return;
    const rest = this.splitter?.flush();
    if (rest?.reasoning) this.emit({ type: "reasoning", text: rest.reasoning });
    if (this.options.native) {
      const parser = this.options.native.parser;
      if (rest?.answer) {
        const released = parser.push(rest.answer, rest.answer);
        if (released) this.text.push(released);
      }
      if (!this.stoppedBySequence) this.finishNative(parser);
      return;
    }
    if (rest?.answer) {
      const gated = this.gate.push(rest.answer);
      if (gated.text !== null) this.text.push(gated.text);
    }
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

  /** The native format's calls, or (not entirely calls) the held text as the answer's end. */
  private finishNative(parser: NativeToolCallParser): void {
    const end = parser.finish();
    if (end.calls) {
      this.text.flush();
      for (const call of end.calls)
        this.emit({ type: "tool-call", call: { id: `call_${randomBytes(12).toString("hex")}`, ...call } });
      this.reason = "tool-calls";
      return;
    }
    const stop = this.text.push(end.text);
    if (stop.stopped) {
      this.noteStop(stop);
      this.reason = "stop";
    } else this.text.flush();
  }
}
