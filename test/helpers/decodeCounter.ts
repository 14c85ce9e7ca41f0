// Counts the llama_decode calls node-llama-cpp makes, by wrapping the native context of every LlamaContext created
// after `countDecodes()` (node-llama-cpp 3.21 internals: `LlamaContext._create` and the `_ctx` it holds; this helper
// throws when they change, so the tests that use it fail loudly instead of counting nothing).
export interface DecodeCounts {
  /** llama_decode calls (one `initBatch` each). */
  decodes: number;
  /** Tokens in them. */
  tokens: number;
  /** Time spent in decodes and in sampling, as measured around the native calls. */
  decodeMs: number;
  sampleMs: number;
  /**
   * Each decode's batch as node-llama-cpp filled it: the native sequence id and token count of every item, in the
   * order added (llama.cpp splits a batch into passes by that order: see `computePasses`).
   */
  batches: { sequenceId: number; tokens: number }[][];
  reset(): void;
}

/**
 * The compute passes (ubatches) llama.cpp makes of one batch with a per-sequence KV cache (what node-llama-cpp's
 * contexts have): `llama_batch_allocr::split_equal(n_ubatch, sequential = true)` puts sequences into one pass only
 * while their ids go up by one in batch order, and takes as many tokens of each as the shortest has. Each pass
 * reads every weight again, so on a CPU a pass costs about as much as a one-token decode.
 */
export function computePasses(batch: { sequenceId: number; tokens: number }[], ubatch = 512): number {
  const left = batch.map((item) => item.tokens);
  let passes = 0;
  while (left.some((n) => n > 0)) {
    const chain: number[] = [];
    for (const [index, item] of batch.entries()) {
      if (left[index]! === 0) continue;
      if (chain.length === 0 || item.sequenceId === batch[chain[chain.length - 1]!]!.sequenceId + 1) chain.push(index);
    }
    const take = Math.max(
      1,
      Math.min(Math.min(...chain.map((index) => left[index]!)), Math.floor(ubatch / chain.length)),
    );
    for (const index of chain) left[index] = Math.max(0, left[index]! - take);
    passes++;
  }
  return passes;
}

type Create = (...args: unknown[]) => Promise<unknown>;

export async function countDecodes(): Promise<DecodeCounts> {
  const nlc = await import("node-llama-cpp");
  const contextClass = nlc.LlamaContext as unknown as { _create?: Create; _decodeCounted?: DecodeCounts };
  if (contextClass._decodeCounted) return contextClass._decodeCounted;
  const create = contextClass._create;
  if (typeof create !== "function")
    throw new Error("node-llama-cpp's LlamaContext._create is gone: update test/helpers/decodeCounter.ts");
  const counts: DecodeCounts = {
    decodes: 0,
    tokens: 0,
    decodeMs: 0,
    sampleMs: 0,
    batches: [],
    reset() {
      counts.decodes = counts.tokens = counts.decodeMs = counts.sampleMs = 0;
      counts.batches = [];
    },
  };
  const timed =
    (target: object, method: (...a: unknown[]) => Promise<unknown>, key: "decodeMs" | "sampleMs") =>
    async (...a: unknown[]) => {
      const started = performance.now();
      try {
        return await method.apply(target, a);
      } finally {
        counts[key] += performance.now() - started;
      }
    };
  contextClass._create = async function (this: unknown, ...args: unknown[]) {
    const context = (await create.apply(this, args)) as { _ctx?: Record<string, unknown> };
    const native = context._ctx;
    for (const method of ["initBatch", "addToBatch", "decodeBatch", "sampleToken"])
      if (typeof native?.[method] !== "function")
        throw new Error(`node-llama-cpp's context has no _ctx.${method}: update test/helpers/decodeCounter.ts`);
    // The native object's methods are read-only: put a proxy in its place.
    context._ctx = new Proxy(native!, {
      get(target, key) {
        const value = target[key as string];
        if (typeof value !== "function") return value;
        const method = value as (...a: unknown[]) => Promise<unknown>;
        if (key === "initBatch")
          return (size: number) => {
            counts.decodes++;
            counts.tokens += size;
            counts.batches.push([]);
            return method.call(target, size);
          };
        // addToBatch(sequenceId, firstTokenSequenceIndex, tokens, logitIndexes)
        if (key === "addToBatch")
          return (...a: unknown[]) => {
            counts.batches[counts.batches.length - 1]?.push({
              sequenceId: a[0] as number,
              tokens: (a[2] as ArrayLike<number>).length,
            });
            return method.apply(target, a);
          };
        if (key === "decodeBatch") return timed(target, method, "decodeMs");
        if (key === "sampleToken") return timed(target, method, "sampleMs");
        return method.bind(target);
      },
    });
    return context;
  };
  contextClass._decodeCounted = counts;
  return counts;
}
