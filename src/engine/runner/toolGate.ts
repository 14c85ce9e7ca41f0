import { JsonEndTracker } from "../../core/jsonEnd.js";

export type ToolMode = "undecided" | "tool" | "text";

/**
 * Token-loop filter for tool calls and JSON answers. A forced call is buffered from the start; with tools offered
 * ("auto"), an answer that opens with "{" (or "[" when parallel calls are allowed) is held back until its JSON value
 * ends, then becomes calls if it parses as them; any other answer passes as text. With a JSON grammar, the value's
 * closing bracket ends the answer (the grammar would allow endless whitespace after it).
 */
export class ToolGate {
  private current: ToolMode;
  private held = "";
  private json: JsonEndTracker | undefined;

  constructor(
    mode: ToolMode,
    private readonly parallel: boolean,
    trackJsonEnd: boolean,
  ) {
    this.current = mode;
    if (trackJsonEnd || mode === "tool") this.json = new JsonEndTracker();
  }

  get mode(): ToolMode {
    return this.current;
  }

  /** Text buffered as a (possible) tool call, or whitespace still undecided. */
  get buffered(): string {
    return this.held;
  }

  /**
   * Feeds text. `text`: what passes on as the answer (null while held or buffered as a call); `ended`: a JSON value
   * (the answer or the call) is complete, so generation should stop.
   */
  push(text: string): { text: string | null; ended: boolean } {
    if (this.current === "undecided") {
      this.held += text;
      const start = this.held.trimStart();
      if (start.length === 0) return { text: null, ended: false };
      this.current = start.startsWith("{") || (this.parallel && start.startsWith("[")) ? "tool" : "text";
      text = this.held;
      this.held = "";
      if (this.current === "tool") this.json ??= new JsonEndTracker();
    }
    const end = this.json?.push(text) ?? -1;
    if (end >= 0) text = text.slice(0, end);
    if (this.current === "tool") {
      this.held += text;
      return { text: null, ended: end >= 0 };
    }
    return { text, ended: end >= 0 };
  }
}
