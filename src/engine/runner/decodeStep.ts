/**
 * One decode per step across the requests of a context (docs/threads.md, "Concurrent requests").
 *
 * node-llama-cpp batches the tokens that sequences have queued when it dispatches a decode, and keeps decoding while
 * any are queued. After a decode it samples every sequence in turn (one after another on the runner's one libuv
 * thread), so the sequences get their tokens at different times, and one whose token comes last (or whose request
 * takes longer over its token: detokenizing, stop sequences, logprobs) misses the next decode and gets one of its
 * own. Measured on the 135M shape, 4 streams × 32 tokens: 43 decodes instead of 32; each extra decode costs
 * nearly a full one (the weights are read again for one token).
 *
 * So every request that has its first token waits, before asking for the next one, until every other such request
 * has done the same; then they all ask at once and node-llama-cpp puts them into one batch, as llama-server does.
 * A request whose prompt is still being evaluated is not waited for; it joins with its first token. A request that
 * ends (or is cancelled) leaves, which releases the others if they were waiting only for it.
 */
export class DecodeStep {
  private members = 0;
  private waiting: (() => void)[] = [];

  /** Requests in their token loop. */
  get generating(): number {
    return this.members;
  }

  /**
   * Yields the tokens of one request, each request's next token asked for in step with the others'. A value given to
   * `next()` (tokens to evaluate instead of the one just sampled) is passed on to the request's own iterator.
   */
  async *pace<T, TNext>(tokens: AsyncIterator<T, void, TNext | undefined>): AsyncGenerator<T, void, TNext | undefined> {
    let joined = false;
    try {
      let sent: TNext | undefined;
      for (;;) {
        const next = await tokens.next(sent);
        if (next.done) break;
        if (!joined) {
          joined = true;
          this.members++;
        }
        sent = yield next.value;
        await this.arrive();
      }
    } finally {
      if (joined) {
        this.members--;
        this.releaseIfAllArrived();
      }
      await tokens.return?.();
    }
  }

  /** Resolves when every member has arrived (at once when this is the last one). */
  private arrive(): Promise<void> | undefined {
    if (this.waiting.length + 1 >= this.members) {
      this.release();
      return undefined;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private releaseIfAllArrived(): void {
    if (this.waiting.length > 0 && this.waiting.length >= this.members) this.release();
  }

  private release(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const resolve of waiting) resolve();
  }
}
