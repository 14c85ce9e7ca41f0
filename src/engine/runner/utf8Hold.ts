import type { Vocabulary } from "./vocabulary.js";

/**
 * Token-loop filter: turns tokens into text, holding back a token that ends inside a UTF-8 character (byte-fallback
 * tokens carry one byte each) until the rest arrives, up to 4 tokens, so a client never gets half a character.
 */
export class Utf8Hold {
  private pending: number[] = [];
  constructor(private readonly vocabulary: Vocabulary) {}

  /**
   * `generated`: every token generated so far, ending with `token` (the ones before give context: a word-start
   * token's leading space, say). `last`: no token follows, so nothing is held. Returns the text, or undefined while
   * it is held.
   */
  push(token: number, generated: readonly number[], last: boolean): string | undefined {
    this.pending.push(token);
    const before = generated.slice(Math.max(0, generated.length - this.pending.length - 8), -this.pending.length);
    const text = this.vocabulary.detokenize(this.pending, false, before);
    if (text.endsWith("\uFFFD") && this.pending.length < 4 && !last) return undefined;
    this.pending = [];
    return text;
  }
}
