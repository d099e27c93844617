/**
 * The retry policy of a batch that must be retried (processBatch threw `BatchProcessingError`), the
 * same for every host: unbounded, exponential from `CDC_RETRY_MIN_INTERVAL_SECONDS` (default 5) to
 * `CDC_RETRY_MAX_INTERVAL_SECONDS` (default 900). Unbounded because a batch is never skipped: its
 * partition's checkpoint (or committed offset) waits until it succeeds. The Functions host hands it
 * to the runtime as the trigger's `exponentialBackoff` retry; the worker waits `retryDelayMs` itself.
 * A batch whose retries only wait for another partition's earlier change (`AwaitingPartitionError`)
 * is retried sooner by the worker (`awaitingRetryDelayMs`); the Functions runtime's delay is fixed by
 * the host and cannot depend on the outcome.
 */
import { getInt, type Env } from '../core/env.js';
import { AwaitingPartitionError, ConfigError } from '../core/errors.js';

export interface RetryPolicy {
  minIntervalSeconds: number;
  maxIntervalSeconds: number;
}

export function retryPolicyFromEnv(env: Env): RetryPolicy {
  const minIntervalSeconds = getInt(env, 'CDC_RETRY_MIN_INTERVAL_SECONDS', 5, { min: 1 });
  const maxIntervalSeconds = getInt(env, 'CDC_RETRY_MAX_INTERVAL_SECONDS', 900, { min: 1 });
  if (maxIntervalSeconds < minIntervalSeconds) {
    throw new ConfigError('CDC_RETRY_MAX_INTERVAL_SECONDS', `an integer >= CDC_RETRY_MIN_INTERVAL_SECONDS (${minIntervalSeconds})`, String(maxIntervalSeconds));
  }
  return { minIntervalSeconds, maxIntervalSeconds };
}

/**
 * The wait before retry `retry` (1 = the first retry): the minimum, doubled on every further retry,
 * capped at the maximum, as the Functions runtime's exponential backoff grows.
 */
export function retryDelayMs(policy: RetryPolicy, retry: number): number {
  const seconds = policy.minIntervalSeconds * 2 ** Math.min(Math.max(retry - 1, 0), 30);
  return Math.min(seconds, policy.maxIntervalSeconds) * 1000;
}

/** The first wait of a batch that only waits for another partition: about one batch of that partition. */
export const AWAITING_FIRST_DELAY_MS = 100;

/**
 * The wait before retry `retry` (1 = the first) of consecutive attempts whose every retry error is an
 * `AwaitingPartitionError`: 100 ms, doubled each time, never more than the policy's minimum. Waiting
 * for another partition is no failure of the sink, so the policy's growth to its maximum does not
 * apply: a partition far behind is asked again every minimum interval, one `mget` each time.
 */
export function awaitingRetryDelayMs(policy: RetryPolicy, retry: number): number {
  return Math.min(AWAITING_FIRST_DELAY_MS * 2 ** Math.min(Math.max(retry - 1, 0), 30), policy.minIntervalSeconds * 1000);
}

/** Whether every error of a failed attempt only waits for another partition (none is empty: an unexplained failure). */
export function onlyAwaitingPartitions(errors: readonly unknown[]): boolean {
  return errors.length > 0 && errors.every((error) => error instanceof AwaitingPartitionError);
}
