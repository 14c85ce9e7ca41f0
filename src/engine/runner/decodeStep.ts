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
 *
 * They ask in the order of their sequence ids (`slot`), so node-llama-cpp fills the batch in that order: llama.cpp
 * computes a batch of a per-sequence KV cache in one pass only while the sequence ids go up by one in batch order
 * (`llama_batch_allocr::split_equal`, sequential), and otherwise in several, each about a whole decode's cost on a
 * real model (1B shape, 4 tokens: 120 ms in order 0,1,2,3, 200 ms as 2,3,0,1, 356 ms as 3,2,1,0; docs/threads.md,
 * "Batch order"). Resumed in that order, the requests reach node-llama-cpp's queue in that order: the code between
 * here and its queue is the same for each.
 */
export class DecodeStep {
  private members = 0;
  private waiting: { slot: number; resume: () => void }[] = [];
  private releasing = false;
  /** Context operations waiting for a step boundary (see `exclusive`). */
  private holds = 0;

  /** Requests in their token loop. */
  get generating(): number {
    return this.members;
  }

  /**
   * Yields the tokens of one request, each request's next token asked for in step with the others'. A value given to
   * `next()` (tokens to evaluate instead of the one just sampled) is passed on to the request's own iterator.
   */
  async *pace<T, TNext>(
    tokens: AsyncIterator<T, void, TNext | undefined>,
    slot = 0,
  ): AsyncGenerator<T, void, TNext | undefined> {
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
        await this.arrive(slot);
      }
    } finally {
      if (joined) {
        this.members--;
        this.releaseIfAllArrived();
      }
      await tokens.return?.();
    }
  }

  /**
   * Runs an operation that needs node-llama-cpp's context lock (trimming a sequence's KV cache) while others generate.
   * node-llama-cpp's dispatch loop holds that lock for as long as any decode is queued, so with two or more requests
   * generating it never lets go and the operation waits for all of them to finish (measured on the 135M shape: a trim
   * asked for at 0.5 s waited 25 s, until two streams of 150 tokens ended; test/trim-while-generating.test.ts). Here
   * the members are held at the next step boundary until the operation is done: the queue empties, the loop ends and
   * the operation gets the lock, one step's pause.
   */
  async exclusive<T>(operation: () => Promise<T>): Promise<T> {
    this.holds++;
    try {
      return await operation();
    } finally {
      this.holds--;
      this.releaseIfAllArrived();
    }
  }

  /**
   * Resolves when every member has arrived. The last to arrive waits too, so that all resume in slot order; a request
   * alone is not held at all.
   */
  private arrive(slot: number): Promise<void> | undefined {
    if (this.members <= 1 && this.waiting.length === 0 && this.holds === 0) return undefined;
    const arrived = new Promise<void>((resume) => this.waiting.push({ slot, resume }));
    this.releaseIfAllArrived();
    return arrived;
  }

  private releaseIfAllArrived(): void {
    if (this.holds > 0 || this.waiting.length === 0 || this.waiting.length < this.members || this.releasing) return;
    // After the caller's `await` has subscribed: its resumption is then queued in its place, not after the others'.
    this.releasing = true;
    queueMicrotask(() => {
      this.releasing = false;
      const waiting = this.waiting.sort((a, b) => a.slot - b.slot);
      this.waiting = [];
      for (const { resume } of waiting) resume();
    });
  }
}
