import type { ChatEvent } from "../../core/chat.js";
import { StopSequenceMatcher } from "../../core/stopSequences.js";
import type { LogprobTracker } from "./logprobs.js";

/**
 * Token-loop filter at the end of the pipeline: finds stop sequences in the answer's text (holding back what could
 * be the start of one) and emits the text that is safe, with the logprobs of the tokens that text completes.
 */
export class StopFilter {
  private readonly matcher: StopSequenceMatcher;
  constructor(
    stops: readonly string[],
    private readonly logprobs: LogprobTracker | undefined,
    private readonly emit: (event: ChatEvent) => void,
  ) {
    this.matcher = new StopSequenceMatcher(stops);
  }

  /** Feeds the text of the tokens added to the logprob tracker since the last call; says whether a stop was hit. */
  push(text: string): { stopped: boolean; stop?: string } {
    this.logprobs?.place(text);
    const result = this.matcher.push(text);
    this.send(result.text);
    return result.stop !== undefined ? { stopped: result.stopped, stop: result.stop } : { stopped: result.stopped };
  }

  /** The answer ended without a stop sequence: sends what was held back for one, with its logprobs. */
  flush(): void {
    this.logprobs?.place("");
    this.send(this.matcher.flush());
  }

  private send(text: string): void {
    const entries = this.logprobs?.release(text);
    if (text || entries?.length)
      this.emit(entries ? { type: "text-delta", text, logprobs: entries } : { type: "text-delta", text });
  }
}
