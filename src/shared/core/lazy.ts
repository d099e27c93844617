/**
 * Memoises an async factory; forgets a failed attempt so the next call tries again. Hosts build a
 * sink's clients on first use this way: a missing setting fails that invocation naming the variable,
 * and the retry policy holds the checkpoint until the configuration is fixed.
 */
export function lazy<T>(factory: () => T | Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= Promise.resolve()
      .then(factory)
      .catch((error: unknown) => {
        value = undefined;
        throw error;
      });
    return value;
  };
}
