/**
 * Finds stop sequences in streamed text, including ones split across tokens, without ever emitting part of a stop
 * string: text that could still be the start of a stop sequence is held back until it is known not to be.
 */
export class StopSequenceMatcher {
  private held = "";
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = Math.max(0, ...stops.map((s) => s.length));
  }

  /** Feeds new text; returns the text safe to emit and whether a stop sequence was reached (and which). */
  push(text: string): { text: string; stopped: boolean; stop?: string } {
    if (this.stops.length === 0) return { text, stopped: false };
    const buffer = this.held + text;
    let firstStop = -1;
    let matched = "";
    for (const stop of this.stops) {
      if (stop.length === 0) continue;
      const at = buffer.indexOf(stop);
      if (at !== -1 && (firstStop === -1 || at < firstStop)) {
        firstStop = at;
        matched = stop;
      }
    }
    if (firstStop !== -1) {
      this.held = "";
      return { text: buffer.slice(0, firstStop), stopped: true, stop: matched };
    }
    // Hold back the longest suffix that is a prefix of some stop sequence.
    let keep = 0;
    for (let length = Math.min(this.longest - 1, buffer.length); length > 0; length--) {
      const suffix = buffer.slice(buffer.length - length);
      if (this.stops.some((stop) => stop.startsWith(suffix))) {
        keep = length;
        break;
      }
    }
    this.held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** At the end of generation, the held text was not a stop after all. */
  flush(): string {
    const rest = this.held;
    this.held = "";
    return rest;
  }
}
