import { describe, expect, test } from '@jest/globals';
import { defaultPartitioner } from '@platformatic/kafka';
import type { ClusterMetadata } from '@platformatic/kafka';
import { Kafka, logLevel } from 'kafkajs';
import { loadConfig } from '../../../src/reader/config.js';
import { byLeader, KafkaPublisher, partitionFor, RequestScratch } from '../../../src/reader/publish/kafkaPublisher.js';
import type { OutRecord } from '../../../src/reader/publish/publisher.js';
import { eventually, serviceEnv, uniqueName } from '../../helpers/services.js';
import { readerEnv } from '../helpers.js';

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

describe('byLeader', () => {
  test('with several leaders, each partition is in exactly one request, in send order; partitions ascending', () => {
    const leaders = [1, 2, 1, 3];
    const meta = {
      topics: new Map([
        ['a', { partitionsCount: 4, partitions: leaders.map((leader) => ({ leader })) }],
        ['b', { partitionsCount: 1, partitions: [{ leader: 2 }] }],
      ]),
    } as unknown as ClusterMetadata;
    const records: OutRecord[] = Array.from({ length: 200 }, (_, i) => ({
      topic: i % 5 === 0 ? 'b' : 'a',
      key: Buffer.from(`{"id":${i % 17}}`),
      value: Buffer.from(String(i)),
      ...(i % 11 === 0 ? { partition: 6 } : {}), // an explicit partition, taken modulo the count as the client does
    }));
    const grouped = byLeader(records, meta);
    expect([...grouped.keys()].sort()).toEqual([1, 2, 3]);
    const seen: string[] = [];
    for (const [leader, topics] of grouped)
      for (const { topic, partitions } of topics) {
        expect(partitions.map((p) => p.partition)).toEqual([...partitions.map((p) => p.partition)].sort((x, y) => x - y));
        for (const { partition, records: inPartition } of partitions) {
          expect(meta.topics.get(topic)!.partitions[partition]!.leader).toBe(leader);
          const expected = records.filter(
            (r) => r.topic === topic && (r.partition ?? partitionFor(r, r.key, { metadata: meta })) % meta.topics.get(topic)!.partitionsCount === partition,
          );
          expect(inPartition).toEqual(expected);
          seen.push(...inPartition.map((r) => r.value!.toString()));
        }
      }
    expect(seen.sort()).toEqual(records.map((r) => r.value!.toString()).sort());
  });

  test('names a topic or a leader the metadata does not have', () => {
    const meta = { topics: new Map([['a', { partitionsCount: 2, partitions: [{ leader: 1 }] }]]) } as unknown as ClusterMetadata;
    expect(() => byLeader([{ topic: 'x', key: undefined, value: null }], meta)).toThrow('no topic x');
    expect(() => byLeader([{ topic: 'a', key: undefined, value: null, partition: 1 }], meta)).toThrow('no leader for partition 1 of topic a');
  });
});

describe('RequestScratch', () => {
  test('reuses one buffer for every body up to its size, grows it for a larger one, and gives a body over 4 MiB its own', () => {
    const scratch = new RequestScratch();
    const first = scratch.take(1_000);
    expect(first).toHaveLength(1_000);
    expect(scratch.take(600).buffer).toBe(first.buffer);
    const grown = scratch.take(1_500);
    expect(grown).toHaveLength(1_500);
    expect(grown.buffer).not.toBe(first.buffer);
    expect(scratch.take(1_999).buffer).toBe(grown.buffer); // grown to twice the old size
    const huge = scratch.take(5 * 1024 * 1024);
    expect(huge).toHaveLength(5 * 1024 * 1024);
    expect(scratch.take(10).buffer).toBe(grown.buffer);
  });
});

describe('KafkaPublisher against the real broker (its own request encoding, read back with kafkajs)', () => {
  test('every record arrives with its key, value, headers, partition and order; tombstones and empty values included', async () => {
    const env = serviceEnv();
    const topic = uniqueName('kpub');
    const kafka = new Kafka({ clientId: 'kafka-publisher-test', brokers: env.kafkaBrokers, logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();

    const publisher = await KafkaPublisher.create(loadConfig(readerEnv(topic)).kafka);
    const sent: OutRecord[] = [];
    try {
      // Three sends: a mixed batch, one record, and a large batch of keyed records.
      const mixed: OutRecord[] = [
        { topic, key: Buffer.from('{"id":1}'), value: Buffer.from('{"op":"c","ä":"€"}') },
        { topic, key: Buffer.from('{"id":1}'), value: null },
        { topic, key: undefined, value: Buffer.from('control'), partition: 2 },
        { topic, key: Buffer.alloc(0), value: Buffer.alloc(0) },
        {
          topic,
          key: Buffer.from('{"id":2}'),
          value: Buffer.alloc(400_000, 'x'),
          headers: new Map([
            ['cdc-claim', Buffer.from('blob/1')],
            ['ü', Buffer.alloc(0)],
          ]),
        },
      ];
      const single: OutRecord[] = [{ topic, key: Buffer.from('{"id":3}'), value: Buffer.from('{"v":3}') }];
      const many: OutRecord[] = Array.from({ length: 2_000 }, (_, i) => ({ topic, key: Buffer.from(`{"id":${i % 50}}`), value: Buffer.from(`{"n":${i}}`) }));
      for (const batch of [mixed, single, many]) {
        await publisher.send(batch);
        sent.push(...batch);
      }
    } finally {
      await publisher.close();
    }

    const consumer = kafka.consumer({ groupId: uniqueName('kpub_g') });
    const received: { partition: number; key: Buffer | null; value: Buffer | null; headers: Record<string, string> }[] = [];
    await consumer.connect();
    try {
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({
        eachMessage: ({ partition, message }) => {
          const headers = Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]));
          received.push({ partition, key: message.key, value: message.value, headers });
          return Promise.resolve();
        },
      });
      await eventually('every record consumed', () => (received.length >= sent.length ? true : undefined), 60_000);
    } finally {
      await consumer.disconnect();
    }

    expect(received).toHaveLength(sent.length);
    // Per partition, the records in send order, byte for byte; a keyed record on its key's partition.
    for (let partition = 0; partition < 3; partition++) {
      const expected = sent
        .filter((r) => (r.partition ?? defaultPartitioner({ topic }, r.key ?? Buffer.alloc(0)) % 3) === partition)
        .map((r) => ({
          partition,
          key: r.key ? r.key.toString('hex') : null,
          value: r.value ? r.value.toString('hex') : null,
          headers: Object.fromEntries([...(r.headers ?? new Map<string, Buffer>())].map(([k, v]) => [k, v.toString()])),
        }));
      const got = received
        .filter((r) => r.partition === partition)
        .map((r) => ({ partition, key: r.key ? r.key.toString('hex') : null, value: r.value ? r.value.toString('hex') : null, headers: r.headers }));
      expect(got).toEqual(expected);
    }
  }, 120_000);
});
