import type { LlamaContext } from "node-llama-cpp";

/**
 * Threads per decode that follow the load (docs/threads.md): `threads` while one request generates, `busyThreads`
 * while several share each decode or a prompt is being evaluated, where a second thread pays off (a bigger batch
 * per barrier). Before every batch
 * it decodes, node-llama-cpp asks the context's thread-splitter consumer (made by `_reserveThreads`, dropped when
 * idle) how many threads to use; this caps that answer by how many requests are generating. It reaches into
 * node-llama-cpp 3.21.1's internals (pinned): when they are not there, the context keeps `threads` throughout.
 * Returns the thread counts in use for one request and for several.
 */
export function useMoreThreadsWhenBusy(
  context: LlamaContext,
  threads: number,
  busyThreads: number,
  busy: () => boolean,
): { idle: number; busy: number } {
  type Allocation = [number, unknown] | undefined;
  type Consumer = { getAllocationToConsume?: () => Allocation | Promise<Allocation>; capped?: boolean };
  const internals = context as unknown as { _reserveThreads?: () => void; _threadSplitterConsumer?: Consumer };
  const reserve = internals._reserveThreads;
  if (busyThreads === threads || typeof reserve !== "function") return { idle: threads, busy: threads };
  const cap = (allocation: Allocation): Allocation =>
    allocation && [Math.min(allocation[0], busy() ? busyThreads : threads), allocation[1]];
  internals._reserveThreads = function (this: typeof internals) {
    reserve.call(this);
    const consumer = this._threadSplitterConsumer;
    const allocate = consumer?.getAllocationToConsume;
    if (!consumer || consumer.capped || typeof allocate !== "function") return;
    consumer.capped = true;
    consumer.getAllocationToConsume = () => {
      const allocation = allocate.call(consumer);
      return allocation instanceof Promise ? allocation.then(cap) : cap(allocation);
    };
  };
  return { idle: threads, busy: busyThreads };
}
