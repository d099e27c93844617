/**
 * Memoises an async factory; forgets a failed attempt so the next call tries again. Hosts build a
 * sink's clients on first use this way: a missing setting fails that invocation naming the variable,
 * and the retry policy holds the checkpoint until the configuration is fixed. The arguments of the
 * call that builds the value are passed to the factory (later calls' arguments are not used).
 */
export function lazy<T, A extends unknown[] = []>(factory: (...args: A) => T | Promise<T>): (...args: A) => Promise<T> {
  let value: Promise<T> | undefined;
  return (...args) => {
    value ??= Promise.resolve()
      .then(() => factory(...args))
      .catch((error: unknown) => {
        value = undefined;
        throw error;
      });
    return value;
  };
}
