/**
 * Finds where a streamed JSON object or array ends. Grammar-constrained generation may go on emitting the
 * whitespace a JSON grammar allows after the value; this tells the engine to stop at the closing bracket instead.
 * Scalars at the top level are not tracked (they end at the model's end-of-generation token).
 */
export class JsonEndTracker {
  private depth = 0;
  private started = false;
  private inString = false;
  private escaped = false;
  private done = false;

  /** Feeds text; returns the length of the prefix of `text` that completes the value, or -1 when not complete yet. */
  push(text: string): number {
    if (this.done) return 0;
    for (let i = 0; i < text.length; i++) {
      const char = text[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (char === "\\") this.escaped = true;
        else if (char === '"') this.inString = false;
        continue;
      }
      if (char === '"') this.inString = true;
      else if (char === "{" || char === "[") {
        this.depth++;
        this.started = true;
      } else if (char === "}" || char === "]") {
        this.depth--;
        if (this.started && this.depth === 0) {
          this.done = true;
          return i + 1;
        }
      }
    }
    return -1;
  }
}
