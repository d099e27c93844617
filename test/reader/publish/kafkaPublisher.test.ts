import { describe, expect, test } from '@jest/globals';
import { defaultPartitioner } from '@platformatic/kafka';
import type { ClusterMetadata } from '@platformatic/kafka';
import { partitionFor } from '../../../src/reader/publish/kafkaPublisher.js';

const metadata = (partitions: Record<string, number>): ClusterMetadata =>
  ({ topics: new Map(Object.entries(partitions).map(([t, n]) => [t, { partitionsCount: n }])) }) as unknown as ClusterMetadata;

describe('partitionFor', () => {
  const keys = ['{"id":1}', '{"id":2}', '{"id":"ä\\"x"}', ''].map((k) => Buffer.from(k));

  test("a key's partition is the client's default (murmur2) on a topic with several partitions, or before metadata is known", () => {
    for (const key of keys) {
      const expected = defaultPartitioner({ topic: 't' }, key);
      expect(partitionFor({ topic: 't' }, key, { metadata: metadata({ t: 12 }) })).toBe(expected);
      expect(partitionFor({ topic: 't' }, key, { metadata: undefined })).toBe(expected);
      expect(partitionFor({ topic: 'other' }, key, { metadata: metadata({ t: 1 }) })).toBe(expected);
    }
  });

  test('one partition: 0 for every record; keyless records spread over several partitions', () => {
    for (const key of [...keys, undefined]) expect(partitionFor({ topic: 't' }, key, { metadata: metadata({ t: 1 }) })).toBe(0);
    const spread = new Set(Array.from({ length: 8 }, () => partitionFor({ topic: 't' }, undefined, { metadata: metadata({ t: 4 }) }) % 4));
    expect(spread.size).toBe(4);
  });
});
