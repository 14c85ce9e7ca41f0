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
  reset(): void;
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
    reset() {
      counts.decodes = counts.tokens = counts.decodeMs = counts.sampleMs = 0;
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
    for (const method of ["initBatch", "decodeBatch", "sampleToken"])
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
            return method.call(target, size);
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
