/**
 * Token-loop filter: separates a model's reasoning from its answer. A reasoning model opens its answer with a
 * thought block (`<think>…</think>`, or its template's own markers); the text inside goes out as reasoning, never as
 * the answer, so stop sequences, JSON endings and tool-call parsing see only the answer.
 */
import type { ChatWrapper } from "node-llama-cpp";

export interface ReasoningMarkers {
  open: string;
  close: string;
  /** The template opens the thought block itself (its prompt ends inside it): generation starts in reasoning. */
  openedByPrompt: boolean;
}

export const THINK_MARKERS: ReasoningMarkers = { open: "<think>", close: "</think>", openedByPrompt: false };

function markerText(value: unknown): string | undefined {
  if (typeof value === "string") return value.trim() || undefined;
  if (value && typeof value === "object" && !("type" in value) && typeof value.toString === "function") {
    const text = String(value).trim();
    return text || undefined;
  }
  return undefined;
}

/**
 * The markers a chat wrapper knows (node-llama-cpp's `settings.segments.thought`), else `<think>`/`</think>`.
 * `promptText`: the rendered prompt; one that ends with the opening marker (DeepSeek-R1's template, say) starts the
 * answer inside the thought block.
 */
export function reasoningMarkers(wrapper: ChatWrapper | undefined, promptText: string): ReasoningMarkers {
  const thought = wrapper?.settings.segments?.thought;
  const openedOnStart = typeof thought?.prefix === "object" && "type" in thought.prefix;
  const open = markerText(thought?.prefix) ?? THINK_MARKERS.open;
  const close = markerText(thought?.suffix) ?? THINK_MARKERS.close;
  return { open, close, openedByPrompt: openedOnStart || promptText.trimEnd().endsWith(open) };
}

/** The longest end of `text` that is the start of `marker` (it may be completed by the next text). */
function partialEnd(text: string, marker: string): number {
  for (let length = Math.min(marker.length - 1, text.length); length > 0; length--)
    if (marker.startsWith(text.slice(text.length - length))) return length;
  return 0;
}

export class ReasoningSplitter {
  private state: "start" | "reasoning" | "answer";
  private held = "";
  /** Right after a marker: leading whitespace is the marker's layout, not content. */
  private trimNext = false;

  constructor(private readonly markers: ReasoningMarkers) {
    this.state = markers.openedByPrompt ? "reasoning" : "start";
    this.trimNext = markers.openedByPrompt;
  }

  /** True while the model is reasoning (or may yet open its thought block). */
  get reasoning(): boolean {
    return this.state === "reasoning";
  }

  push(text: string): { reasoning: string; answer: string } {
    let buffer = this.held + text;
    this.held = "";
    let reasoning = "";
    let answer = "";
    while (buffer) {
      if (this.state === "start") {
        const trimmed = buffer.trimStart();
        // Leading whitespace goes out at once, and the block may still open after it. Holding it until the first
        // other character held an answer of only whitespace to its end (time to first token = the whole answer:
        // the 1B bench shape writes "\n"s); a marker after it costs the answer only its leading whitespace.
        if (!trimmed) {
          answer += buffer;
          break;
        }
        // What may still become the opening marker: wait for more (at most the marker's length).
        if (trimmed.length < this.markers.open.length && this.markers.open.startsWith(trimmed)) {
          this.held = buffer;
          break;
        }
        if (trimmed.startsWith(this.markers.open)) {
          this.state = "reasoning";
          this.trimNext = true;
          buffer = trimmed.slice(this.markers.open.length);
          continue;
        }
        this.state = "answer";
        continue;
      }
      if (this.trimNext) {
        buffer = buffer.trimStart();
        if (!buffer) break;
        this.trimNext = false;
      }
      if (this.state === "answer") {
        answer += buffer;
        break;
      }
      const end = buffer.indexOf(this.markers.close);
      if (end >= 0) {
        reasoning += buffer.slice(0, end);
        buffer = buffer.slice(end + this.markers.close.length);
        this.state = "answer";
        this.trimNext = true;
        continue;
      }
      const keep = partialEnd(buffer, this.markers.close);
      reasoning += buffer.slice(0, buffer.length - keep);
      this.held = buffer.slice(buffer.length - keep);
      break;
    }
    return { reasoning, answer };
  }

  /** The budget is spent: reasoning ends here (the caller forces the closing marker into the model's context). */
  close(): string {
    const rest = this.state === "reasoning" ? this.held : "";
    if (this.state === "reasoning") {
      this.held = "";
      this.state = "answer";
      this.trimNext = true;
    }
    return rest;
  }

  /** The generation ended: what was held back goes where it was headed. */
  flush(): { reasoning: string; answer: string } {
    const held = this.held;
    this.held = "";
    return this.state === "reasoning" ? { reasoning: held, answer: "" } : { reasoning: "", answer: held };
  }
}
