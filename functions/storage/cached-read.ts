/**
 * A store read remembered for a short time per instance (the policy records, "are there users?"):
 * concurrent callers share one in-flight read, and a failed read is not remembered.
 */
export function cachedRead<T>(read: () => Promise<T>, ttlMs: number, now: () => number = Date.now): () => Promise<T> {
  let cached: { value: Promise<T>; until: number } | undefined;
  return () => {
    const at = now();
    if (!cached || cached.until <= at) {
      const entry = { value: read(), until: at + ttlMs };
      cached = entry;
      entry.value.catch(() => {
        if (cached === entry) cached = undefined;
      });
    }
    return cached.value;
  };
}
