/**
 * The retry policy of a batch that must be retried (processBatch threw `BatchProcessingError`), the
 * same for every host: unbounded, exponential from `CDC_RETRY_MIN_INTERVAL_SECONDS` (default 5) to
 * `CDC_RETRY_MAX_INTERVAL_SECONDS` (default 900). Unbounded because a batch is never skipped: its
 * partition's checkpoint (or committed offset) waits until it succeeds. The Functions host hands it
 * to the runtime as the trigger's `exponentialBackoff` retry; the worker waits `retryDelayMs` itself.
 */
import { getInt, type Env } from '../core/env.js';
import { ConfigError } from '../core/errors.js';

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
