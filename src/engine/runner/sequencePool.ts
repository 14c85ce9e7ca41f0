import type { LlamaContext, LlamaContextSequence, Token, TokenPredictor } from "node-llama-cpp";

/** The shortest cached prefix worth choosing a slot for over keeping the busy slots consecutive. */
const MIN_REUSE = 16;

/** Lexicographic comparison of two ranks of the same length. */
function isBetter(rank: number[], than: number[]): boolean {
  for (const [i, value] of rank.entries()) if (value !== than[i]) return value > than[i]!;
  return false;
}

/**
 * The sequences (slots) of one context. A request gets the free slot whose cached tokens share the longest prefix
 * with its prompt (a follow-up turn lands where its conversation is already evaluated); otherwise the one that keeps
 * the busy slots' numbers consecutive (one compute pass per step, decodeStep.ts), then one that needs no trim, then
 * the slot idle the longest (`rank`). Requests wait in arrival order when none is free (the engine admits at most one
 * per slot).
 *
 * Trimming a slot's cache while other slots generate waits for a step boundary (DecodeStep.exclusive; without it,
 * node-llama-cpp's context lock would keep it waiting until they all finish). The pool keeps one slot more than it
 * admits and empties all but the two most recent while idle, so a burst of new requests mostly finds slots that need
 * no trim.
 */
export class SequencePool {
  private readonly free: LlamaContextSequence[];
  private readonly lastUsed = new Map<LlamaContextSequence, number>();
  private readonly slots = new Map<LlamaContextSequence, number>();
  private readonly held = new Set<LlamaContextSequence>();
  private emptying: Promise<void> | undefined;
  private readonly waiting: ((sequence: LlamaContextSequence) => void)[] = [];
  private tick = 0;
  private active = 0;
  /** Requests holding or waiting for a sequence. */
  get busy(): number {
    return this.active;
  }
  /** `tokenPredictor`: one per sequence (a draft model's, for speculative decoding). */
  constructor(context: LlamaContext, count: number, tokenPredictor?: () => TokenPredictor) {
    this.free = Array.from({ length: count }, () =>
      context.getSequence(tokenPredictor ? { tokenPredictor: tokenPredictor() } : {}),
    );
    for (const [index, sequence] of this.free.entries()) this.slots.set(sequence, index);
  }
  /**
   * A sequence's place in the pool: the order in which the context handed them out, which is the order of their
   * sequence ids in llama.cpp (the batch order that matters, decodeStep.ts).
   */
  slotOf(sequence: LlamaContextSequence): number {
    return this.slots.get(sequence) ?? 0;
  }
  private hold(sequence: LlamaContextSequence): LlamaContextSequence {
    this.held.add(sequence);
    return sequence;
  }
  async acquire(tokens: Token[]): Promise<LlamaContextSequence> {
    this.active++;
    // A slot being emptied while idle is out of `free` for a moment: wait for it (it stops after the current one), so
    // that the choice below sees every slot.
    if (this.emptying) await this.emptying;
    if (this.free.length === 0)
      return new Promise((resolve) => this.waiting.push((sequence) => resolve(this.hold(sequence))));
    // The slots requests hold (not one being emptied while idle: it is free again in a moment).
    const busySlots = new Set([...this.held].map((sequence) => this.slotOf(sequence)));
    let best = -1;
    let bestRank: number[] = [];
    for (const [index, sequence] of this.free.entries()) {
      const rank = this.rank(sequence, tokens, busySlots);
      if (best === -1 || isBetter(rank, bestRank)) {
        best = index;
        bestRank = rank;
      }
    }
    return this.hold(this.free.splice(best, 1)[0]!);
  }
  /**
   * How good a free slot is for a prompt, compared left to right (higher wins):
   * - a cache hit worth having (MIN_REUSE tokens or more; a shared BOS or template header saves nothing);
   * - fewer runs of consecutive slot numbers among the busy slots with this one: llama.cpp computes a step of the
   *   generating sequences in one pass only when their ids are consecutive (decodeStep.ts), so a gap costs every
   *   request a second pass per token for as long as it lasts;
   * - a slot that needs no trim (a trim while others generate pauses them for a step: DecodeStep.exclusive);
   * - any cache hit; then the slot idle the longest.
   */
  private rank(sequence: LlamaContextSequence, tokens: Token[], busy: Set<number>): number[] {
    const shared = sequence.compareContextTokens(tokens).firstDifferentIndex;
    const needsTrim = Math.min(shared, tokens.length - 1) < sequence.nextTokenIndex;
    const slots = [...busy, this.slotOf(sequence)].sort((a, b) => a - b);
    const runs = slots.filter((slot, i) => i === 0 || slot !== slots[i - 1]! + 1).length;
    return [shared >= MIN_REUSE ? shared : 0, -runs, needsTrim ? 0 : 1, shared, -(this.lastUsed.get(sequence) ?? 0)];
  }
  release(sequence: LlamaContextSequence): void {
    this.active--;
    this.held.delete(sequence);
    this.lastUsed.set(sequence, ++this.tick);
    const next = this.waiting.shift();
    if (next) {
      next(sequence);
      return;
    }
    this.free.push(sequence);
    if (this.active === 0 && !this.emptying)
      // Emptying is only a head start for later requests: a slot it fails to clear is trimmed when next used.
      this.emptying = this.keepEmptySlots()
        .catch(() => undefined)
        .finally(() => {
          this.emptying = undefined;
        });
  }
  /**
   * When nothing generates (so a trim is quick), empties every free slot but the two most recently used: those keep
   * their conversations for follow-up turns, and a burst of new requests finds slots that need no trim.
   */
  private async keepEmptySlots(): Promise<void> {
    const byRecency = [...this.free].sort((a, b) => (this.lastUsed.get(b) ?? 0) - (this.lastUsed.get(a) ?? 0));
    const toEmpty = byRecency.slice(2).filter((sequence) => sequence.nextTokenIndex > 0);
    for (const sequence of toEmpty) {
      const index = this.free.indexOf(sequence);
      if (index === -1 || this.active > 0) return;
      this.free.splice(index, 1);
      try {
        await sequence.clearHistory();
      } finally {
        const next = this.waiting.shift();
        if (next) next(sequence);
        else this.free.push(sequence);
      }
    }
  }
}
