/** collectKafkaHub's newest-record query: asked again after a failure, unknown only after every attempt failed. */
import { describe, expect, test } from '@jest/globals';
import type { Admin } from '@platformatic/kafka';
import { collectKafkaHub } from '../../../src/shared/status/kafkaHub.js';

const NEWEST = 1_772_359_200_250n;

/** An admin over a 2-partition topic whose newest-record query (timestamp −3) fails `failures` times. */
function admin(failures: number): { admin: Admin; newestCalls: () => number } {
  let calls = 0;
  const fake = {
    metadata: () => Promise.resolve({ topics: new Map([['t', { partitionsCount: 2 }]]) }),
    listOffsets: ({ topics }: { topics: { partitions: { partitionIndex: number; timestamp: bigint }[] }[] }) => {
      const partitions = topics[0]!.partitions;
      if (partitions[0]!.timestamp === -3n) {
        calls++;
        if (calls <= failures) return Promise.reject(new Error('OFFSET_NOT_AVAILABLE'));
        return Promise.resolve([
          { partitions: partitions.map((p) => ({ partitionIndex: p.partitionIndex, offset: 3n, timestamp: NEWEST - BigInt(p.partitionIndex) })) },
        ]);
      }
      return Promise.resolve([
        { partitions: partitions.map((p) => ({ partitionIndex: p.partitionIndex, offset: p.timestamp === -1n ? 4n : 0n, timestamp: -1n })) },
      ]);
    },
  };
  return { admin: fake as unknown as Admin, newestCalls: () => calls };
}

describe('collectKafkaHub: the newest record', () => {
  test('a failed query is asked again: the publish time is there after two failures', async () => {
    const a = admin(2);
    const hub = await collectKafkaHub(a.admin, 't', []);
    expect(hub.published).toBe(8);
    expect(hub.newestEventTime).toBe(new Date(Number(NEWEST)).toISOString());
    expect(a.newestCalls()).toBe(3);
  });

  test('unknown (null) once every attempt failed, the other figures kept', async () => {
    const a = admin(Infinity);
    const hub = await collectKafkaHub(a.admin, 't', []);
    expect(hub.published).toBe(8);
    expect(hub.newestEventTime).toBeNull();
    expect(a.newestCalls()).toBe(3);
  });
});
