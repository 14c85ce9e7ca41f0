import type { LlamaContext, LlamaContextSequence, Token } from "node-llama-cpp";

/**
 * The sequences (slots) of one context. A request gets the free slot whose cached tokens share the longest prefix
 * with its prompt (a follow-up turn lands where its conversation is already evaluated); ties go to the slot idle the
 * longest. Requests wait in arrival order when none is free (the engine admits at most one per slot).
 *
 * Trimming a slot's cache while other slots generate can wait until they all finish: node-llama-cpp holds its context
 * lock while any decode is queued (measured: a trim started at 0.3 s ran at 2.1 s). So the pool keeps one slot more
 * than it admits, empties all but the two most recent while idle, and a request arriving while others generate takes
 * a slot that needs no trim.
 */
export class SequencePool {
  private readonly free: LlamaContextSequence[];
  private readonly lastUsed = new Map<LlamaContextSequence, number>();
  private readonly waiting: ((sequence: LlamaContextSequence) => void)[] = [];
  private tick = 0;
  private active = 0;
  /** Requests holding or waiting for a sequence. */
  get busy(): number {
    return this.active;
  }
  constructor(context: LlamaContext, count: number) {
    this.free = Array.from({ length: count }, () => context.getSequence());
  }
  async acquire(tokens: Token[]): Promise<LlamaContextSequence> {
    this.active++;
    if (this.free.length === 0) return new Promise((resolve) => this.waiting.push(resolve));
    const othersGenerating = this.active > 1;
    let best = -1;
    let bestShared = -1;
    let bestNeedsTrim = true;
    for (const [index, sequence] of this.free.entries()) {
      const shared = sequence.compareContextTokens(tokens).firstDifferentIndex;
      const needsTrim = Math.min(shared, tokens.length - 1) < sequence.nextTokenIndex;
      const older = best === -1 || (this.lastUsed.get(sequence) ?? 0) < (this.lastUsed.get(this.free[best]!) ?? 0);
      // While others generate, a slot that needs no trim beats any cache hit that does.
      const better =
        best === -1 ||
        (othersGenerating && bestNeedsTrim && !needsTrim) ||
        ((!othersGenerating || needsTrim === bestNeedsTrim) &&
          (shared > bestShared || (shared === bestShared && older)));
      if (better) {
        best = index;
        bestShared = shared;
        bestNeedsTrim = needsTrim;
      }
    }
    return this.free.splice(best, 1)[0]!;
  }
  release(sequence: LlamaContextSequence): void {
    this.active--;
    this.lastUsed.set(sequence, ++this.tick);
    const next = this.waiting.shift();
    if (next) {
      next(sequence);
      return;
    }
    this.free.push(sequence);
    if (this.active === 0) void this.keepEmptySlots();
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
