/**
 * Pulls the first item before anything is sent, so an error that happens before generation starts (unknown model,
 * prompt too long) becomes an ordinary JSON error with its status instead of a broken event stream.
 */
export async function primeStream<T>(source: AsyncIterable<T>): Promise<AsyncIterator<T> & { first: T | undefined }> {
  const iterator = source[Symbol.asyncIterator]();
  const first = await iterator.next();
  let replayed = false;
  return {
    /** The first item, for what must go into the headers (a truncated prompt). */
    first: first.done ? undefined : first.value,
    next: () => {
      if (!replayed) {
        replayed = true;
        return Promise.resolve(first);
      }
      return iterator.next();
    },
    return: async (value?: unknown) => {
      await iterator.return?.(value);
      return { done: true, value: undefined };
    },
  };
}
