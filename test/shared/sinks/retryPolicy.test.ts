import { describe, expect, it } from '@jest/globals';
import { AwaitingPartitionError, ConfigError, TransientSinkError } from '../../../src/shared/core/errors.js';
import { awaitingRetryDelayMs, onlyAwaitingPartitions, retryDelayMs, retryPolicyFromEnv } from '../../../src/shared/sinks/retryPolicy.js';

describe('retry policy', () => {
  it('defaults to 5 s .. 900 s, the numbers both hosts read', () => {
    expect(retryPolicyFromEnv({})).toEqual({ minIntervalSeconds: 5, maxIntervalSeconds: 900 });
  });

  it('waits the minimum first, doubles, and stays at the maximum however many retries there were', () => {
    const policy = { minIntervalSeconds: 5, maxIntervalSeconds: 900 };
    expect([1, 2, 3, 4, 5, 6, 7, 8, 1000].map((n) => retryDelayMs(policy, n) / 1000)).toEqual([5, 10, 20, 40, 80, 160, 320, 640, 900]);
    expect(retryDelayMs({ minIntervalSeconds: 1, maxIntervalSeconds: 1 }, 50)).toBe(1000);
  });

  it('a batch waiting for another partition is retried after 100 ms, doubling, never longer than the minimum', () => {
    const policy = { minIntervalSeconds: 5, maxIntervalSeconds: 900 };
    expect([1, 2, 3, 4, 5, 6, 7, 8, 1000].map((n) => awaitingRetryDelayMs(policy, n))).toEqual([100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
    expect(awaitingRetryDelayMs({ minIntervalSeconds: 1, maxIntervalSeconds: 1 }, 5)).toBe(1000);
  });

  it('takes the short delay only when every retry error waits for another partition', () => {
    const waiting = new AwaitingPartitionError('waiting for the delete of the old key');
    expect(waiting).toBeInstanceOf(TransientSinkError);
    expect(waiting).toMatchObject({ code: 'AWAITING_PARTITION', canRetry: true });
    expect(onlyAwaitingPartitions([waiting, waiting])).toBe(true);
    expect(onlyAwaitingPartitions([waiting, new TransientSinkError('index write block')])).toBe(false);
    expect(onlyAwaitingPartitions([])).toBe(false);
  });

  it('refuses a maximum below the minimum, naming the maximum', () => {
    expect(() => retryPolicyFromEnv({ CDC_RETRY_MIN_INTERVAL_SECONDS: '10', CDC_RETRY_MAX_INTERVAL_SECONDS: '5' })).toThrow(ConfigError);
    expect(() => retryPolicyFromEnv({ CDC_RETRY_MIN_INTERVAL_SECONDS: '0' })).toThrow(/CDC_RETRY_MIN_INTERVAL_SECONDS/);
  });
});
