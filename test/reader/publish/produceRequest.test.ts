import { describe, expect, test } from '@jest/globals';
import { readRecordsBatch, Reader } from '@platformatic/kafka';
import {
  CLIENT_PRODUCE_APIS,
  encodeProduceRequest,
  MAX_PRODUCE_VERSION,
  MIN_PRODUCE_VERSION,
  type TopicRecords,
} from '../../../src/reader/publish/produceRequest.js';
import type { OutRecord } from '../../../src/reader/publish/publisher.js';

// The client's own request encoders, by version: the reference for the bytes.
const clientEncoders: Record<number, { createRequest: (...args: never[]) => { buffer: Buffer } }> = CLIENT_PRODUCE_APIS;

function clientBytes(version: number, acks: number, timeout: number, topics: TopicRecords[], timestamp: bigint): Buffer {
  // What the Producer hands its encoder: the header keys serialised to Buffers (our headerKey serializer).
  const messages = topics.flatMap(({ topic, partitions }) =>
    partitions.flatMap(({ partition, records }) =>
      records.map((r) => ({
        topic,
        partition,
        key: r.key,
        value: r.value,
        headers: new Map([...(r.headers ?? new Map<string, Buffer>())].map(([k, v]) => [Buffer.from(k), v])),
        timestamp,
      })),
    ),
  );
  const encoder = clientEncoders[version]!.createRequest as unknown as (
    acks: number,
    timeout: number,
    messages: unknown[],
    options: object,
  ) => { buffer: Buffer };
  return encoder(acks, timeout, messages, {}).buffer;
}

// A deterministic generator, so a failure is reproducible.
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

// Arbitrary bytes: slices of one pseudo-random pool (the content only has to differ between records).
const pool = ((next) => Buffer.from(Array.from({ length: 1 << 19 }, () => Math.floor(next() * 256))))(random(7));
function bytes(next: () => number, length: number): Buffer {
  const at = Math.floor(next() * (pool.length - length));
  return pool.subarray(at, at + length);
}

function randomRecord(next: () => number, topic: string): OutRecord {
  const sizes = [0, 1, 63, 64, 127, 128, 300, 8_191, 8_192, 70_000];
  const pick = (): number => sizes[Math.floor(next() * sizes.length)]!;
  const key = next() < 0.2 ? undefined : bytes(next, pick());
  const value = next() < 0.1 ? null : bytes(next, next() < 0.02 ? 300_000 : pick());
  const record: OutRecord = { topic, key, value };
  const r = next();
  if (r < 0.2) record.headers = new Map();
  else if (r < 0.4)
    record.headers = new Map(
      Array.from({ length: 1 + Math.floor(next() * 3) }, (_, i) => [`h${i}-ä€${'x'.repeat(Math.floor(next() * 130))}`, bytes(next, pick())]),
    );
  return record;
}

function randomRequest(seed: number): TopicRecords[] {
  const next = random(seed);
  const topicCount = 1 + Math.floor(next() * 3);
  return Array.from({ length: topicCount }, (_, t) => {
    const topic = `cdc.public.t${t}${'y'.repeat(Math.floor(next() * 200))}`;
    const partitionCount = 1 + Math.floor(next() * 3);
    return {
      topic,
      partitions: Array.from({ length: partitionCount }, (_, p) => ({
        partition: p * 3,
        records: Array.from({ length: 1 + Math.floor(next() * (next() < 0.1 ? 2_000 : 40)) }, () => randomRecord(next, topic)),
      })),
    };
  });
}

const SEEDS = 12;

describe('encodeProduceRequest', () => {
  test('writes the same bytes as the client for every version it implements, with and without keys, values and headers', () => {
    let requests = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const topics = randomRequest(seed);
      for (let version = MIN_PRODUCE_VERSION; version <= MAX_PRODUCE_VERSION; version++) {
        const timestamp = BigInt(1_700_000_000_000 + seed);
        const ours = encodeProduceRequest(version, -1, 5_000, topics, timestamp);
        expect(ours.equals(clientBytes(version, -1, 5_000, topics, timestamp))).toBe(true);
        requests++;
      }
    }
    expect(requests).toBe(SEEDS * 9);
  });

  test('the edge cases one at a time: an empty key and value, a tombstone, a keyless record, a single record', () => {
    const cases: OutRecord[][] = [
      [{ topic: 't', key: Buffer.alloc(0), value: Buffer.alloc(0) }],
      [{ topic: 't', key: Buffer.from('{"id":1}'), value: null }],
      [{ topic: 't', key: undefined, value: Buffer.from('{}'), headers: new Map([['', Buffer.alloc(0)]]) }],
    ];
    for (const records of cases)
      for (const version of [3, 8, 9, 11]) {
        const topics = [{ topic: 't', partitions: [{ partition: 0, records }] }];
        expect(encodeProduceRequest(version, -1, 5_000, topics, 1n).equals(clientBytes(version, -1, 5_000, topics, 1n))).toBe(true);
      }
  });

  test("the client's reader decodes each batch back to the records, with a valid CRC", () => {
    const records: OutRecord[] = [
      { topic: 't', key: Buffer.from('k1'), value: Buffer.from('v1'), headers: new Map([['a', Buffer.from('b')]]) },
      { topic: 't', key: undefined, value: null },
      { topic: 't', key: Buffer.from('k3'), value: Buffer.alloc(200_000, 7) },
    ];
    // Version 3: int16 null transactional id, acks, timeout, 1 topic (int16 name), 1 partition, int32 batch length.
    const body = encodeProduceRequest(3, -1, 5_000, [{ topic: 't', partitions: [{ partition: 2, records }] }], 42n);
    const batchAt = 2 + 2 + 4 + 4 + 2 + 1 + 4 + 4 + 4;
    expect(body.readInt32BE(batchAt - 8)).toBe(2); // the partition
    const batch = readRecordsBatch(Reader.from(body.subarray(batchAt)));
    expect(batch.magic).toBe(2);
    expect(batch.firstTimestamp).toBe(42n);
    expect(batch.lastOffsetDelta).toBe(2);
    // The CRC covers attributes..end (what the broker checks).
    expect(batch.crc).toBe(produceCrc(body.subarray(batchAt + 21)));
    expect(
      batch.records.map((r) => [
        r.offsetDelta,
        r.key?.toString() ?? null,
        r.value?.length ?? null,
        r.headers.map(([k, v]) => `${k?.toString()}=${v?.toString()}`),
      ]),
    ).toEqual([
      [0, 'k1', 2, ['a=b']],
      [1, null, null, []],
      [2, 'k3', 200_000, []],
    ]);
  });

  test('writes into the buffer it is given, over whatever it held, and rejects one of the wrong size', () => {
    const topics = randomRequest(5);
    const expected = encodeProduceRequest(9, -1, 5_000, topics, 7n);
    const dirty = Buffer.alloc(expected.length + 100, 0xab);
    const ours = encodeProduceRequest(9, -1, 5_000, topics, 7n, (size) => dirty.subarray(0, size));
    expect(ours.buffer).toBe(dirty.buffer);
    expect(ours.equals(expected)).toBe(true);
    expect(() => encodeProduceRequest(9, -1, 5_000, topics, 7n, (size) => Buffer.alloc(size - 1))).toThrow(
      `a Produce request of ${expected.length} bytes got a buffer of ${expected.length - 1}`,
    );
  });

  test('implements exactly the versions the client exports, and covers them all', () => {
    expect(Object.keys(CLIENT_PRODUCE_APIS).map(Number)).toEqual(
      Array.from({ length: MAX_PRODUCE_VERSION - MIN_PRODUCE_VERSION + 1 }, (_, i) => MIN_PRODUCE_VERSION + i),
    );
  });

  test('rejects a version the client does not implement and an empty partition', () => {
    const topics = [{ topic: 't', partitions: [{ partition: 0, records: [{ topic: 't', key: undefined, value: null }] }] }];
    expect(() => encodeProduceRequest(2, -1, 5_000, topics, 1n)).toThrow('Produce version 2');
    expect(() => encodeProduceRequest(12, -1, 5_000, topics, 1n)).toThrow('Produce version 12');
    expect(() => encodeProduceRequest(9, -1, 5_000, [{ topic: 't', partitions: [{ partition: 0, records: [] }] }], 1n)).toThrow('no records');
  });
});

// A CRC-32C written here from its definition (Castagnoli polynomial, reflected), independent of the
// client's implementation that the encoder uses.
function produceCrc(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
