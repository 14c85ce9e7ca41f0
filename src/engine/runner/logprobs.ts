import type { TokenLogprob } from "../../core/chat.js";
import type { Vocabulary } from "./vocabulary.js";

/** log(p), floored at -9999 the way OpenAI reports tokens that were practically impossible. */
export function logOf(probability: number): number {
  return probability > 0 ? Math.max(Math.log(probability), -9999) : -9999;
}

/**
 * Pairs generated tokens' log probabilities with the text the client receives. Each token's entry is "placed" at
 * the end of the text it produced, and "released" with the delta that completes that text, so text held back for
 * a possible stop sequence keeps its entries back too, and the tokens of a stop sequence never appear.
 */
export class LogprobTracker {
  private unplaced: TokenLogprob[] = [];
  private placed: { end: number; entry: TokenLogprob }[] = [];
  private rawLength = 0;
  private releasedLength = 0;

  constructor(
    private readonly vocabulary: Vocabulary,
    private readonly alternatives: number,
  ) {}

  private alternative(token: number, probability: number, before: readonly number[]) {
    const text = this.vocabulary.detokenize([token], true, before);
    return { token: text, bytes: [...Buffer.from(text, "utf8")], logprob: logOf(probability) };
  }

  /** `before`: the tokens preceding this one (prompt, then generated). */
  add(token: number, probabilities: Map<number, number>, before: readonly number[]): void {
    const top: TokenLogprob["top"] = [];
    for (const [candidate, probability] of probabilities) {
      if (top.length >= this.alternatives) break;
      top.push(this.alternative(candidate, probability, before));
    }
    this.unplaced.push({ ...this.alternative(token, probabilities.get(token) ?? 0, before), top });
  }

  /** `text` (the output of the tokens added since the last call) goes to the client's stream next. */
  place(text: string): void {
    this.rawLength += text.length;
    for (const entry of this.unplaced) this.placed.push({ end: this.rawLength, entry });
    this.unplaced = [];
  }

  /** `text` was sent: the entries whose text it completes. */
  release(text: string): TokenLogprob[] {
    this.releasedLength += text.length;
    let count = 0;
    while (count < this.placed.length && this.placed[count]!.end <= this.releasedLength) count++;
    return this.placed.splice(0, count).map((item) => item.entry);
  }

  clear(): void {
    this.unplaced = [];
    this.placed = [];
  }
}
