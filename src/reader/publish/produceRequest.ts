/**
 * The body of a Kafka Produce request (versions 3–11, record batch format v2, no compression, not
 * transactional, not idempotent), encoded into one buffer sized up front.
 *
 * Why not the client's own encoder: @platformatic/kafka builds every record in its own `Writer` over a
 * `DynamicBuffer` (a small `Buffer` per varint, two `Map`s per message for the headers, a `BigInt`
 * timestamp), then concatenates the records once for the CRC and again for the request. That was
 * 20–23 % of the reader's CPU samples on a bulk transaction, plus the garbage it leaves (docs/reader.md,
 * "Benchmark", run 13). Here each record is written straight into the request buffer and the CRC-32C
 * is computed over that buffer. The bytes are those the client writes for the same records (unit-tested
 * against the client's `produceV3`…`produceV11.createRequest`); the connection, authentication, API
 * version choice, metadata and response parsing stay the client's.
 *
 * Layout of a record batch (https://kafka.apache.org/documentation/#recordbatch):
 * baseOffset int64, batchLength int32, partitionLeaderEpoch int32, magic int8 (2), crc uint32 (CRC-32C
 * of everything after it), attributes int16, lastOffsetDelta int32, baseTimestamp int64, maxTimestamp
 * int64, producerId int64, producerEpoch int16, baseSequence int32, records count int32, records. A
 * record: length varint, attributes int8, timestampDelta varlong, offsetDelta varint, key (varint
 * length, -1 for null), value (likewise), header count varint, headers (key and value as the key).
 * Varints are zigzag-encoded.
 */
import { crc32c, produceV3, produceV4, produceV5, produceV6, produceV7, produceV8, produceV9, produceV10, produceV11 } from '@platformatic/kafka';
import type { OutRecord } from './publisher.js';

/**
 * The client's Produce APIs by version: the publisher sends with their response parsers, and the tests
 * hold these encoders' bytes against ours. One map, so a version is either in both or in neither.
 */
export const CLIENT_PRODUCE_APIS = {
  3: produceV3,
  4: produceV4,
  5: produceV5,
  6: produceV6,
  7: produceV7,
  8: produceV8,
  9: produceV9,
  10: produceV10,
  11: produceV11,
} as const;
/** The Produce versions the client implements, and so do we. */
export const MIN_PRODUCE_VERSION = 3;
export const MAX_PRODUCE_VERSION = 11;
/** From version 9 the request uses compact (varint-length) strings, arrays and tagged fields. */
const FIRST_FLEXIBLE_VERSION = 9;

export interface PartitionRecords {
  partition: number;
  records: OutRecord[];
}
export interface TopicRecords {
  topic: string;
  partitions: PartitionRecords[];
}

// Every field of a batch before its records: 8 + 4 + 4 + 1 + 4 + 2 + 4 + 8 + 8 + 8 + 2 + 4 + 4.
const BATCH_HEADER_BYTES = 61;
// Offsets inside a batch.
const BATCH_LENGTH_AT = 8;
const CRC_AT = 17;
const ATTRIBUTES_AT = 21;

const zigzag = (n: number): number => ((n << 1) ^ (n >> 31)) >>> 0;

function uvarintBytes(n: number): number {
  let bytes = 1;
  while (n >= 0x80) {
    n >>>= 7;
    bytes++;
  }
  return bytes;
}
const varintBytes = (n: number): number => uvarintBytes(zigzag(n));

function writeUvarint(buf: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}
const writeVarint = (buf: Buffer, pos: number, n: number): number => writeUvarint(buf, pos, zigzag(n));

/** A record's bytes after its length: attributes, timestamp delta (0: one timestamp per batch), offset delta, key, value, headers. */
function recordBodyBytes(record: OutRecord, offsetDelta: number): number {
  let n = 2 + varintBytes(offsetDelta);
  n += record.key ? varintBytes(record.key.length) + record.key.length : 1;
  n += record.value ? varintBytes(record.value.length) + record.value.length : 1;
  const headers = record.headers;
  n += varintBytes(headers?.size ?? 0);
  if (headers)
    for (const [key, value] of headers) {
      const keyBytes = Buffer.byteLength(key);
      n += varintBytes(keyBytes) + keyBytes + varintBytes(value.length) + value.length;
    }
  return n;
}

function batchBytes(records: OutRecord[], bodies: number[]): number {
  let n = BATCH_HEADER_BYTES;
  for (let i = 0; i < records.length; i++) {
    const body = recordBodyBytes(records[i]!, i);
    bodies.push(body);
    n += varintBytes(body) + body;
  }
  return n;
}

function writeBytes(buf: Buffer, pos: number, bytes: Buffer | null | undefined): number {
  if (!bytes) return writeVarint(buf, pos, -1);
  pos = writeVarint(buf, pos, bytes.length);
  return pos + bytes.copy(buf, pos);
}

function writeBatch(buf: Buffer, start: number, records: OutRecord[], bodies: number[], bodyAt: number, timestamp: bigint): number {
  const count = records.length;
  buf.writeBigInt64BE(0n, start); // baseOffset: the broker assigns it
  buf.writeInt32BE(0, start + 12); // partitionLeaderEpoch
  buf.writeInt8(2, start + 16); // magic
  buf.writeInt16BE(0, start + ATTRIBUTES_AT); // no compression, not transactional
  buf.writeInt32BE(count - 1, start + 23); // lastOffsetDelta
  buf.writeBigInt64BE(timestamp, start + 27);
  buf.writeBigInt64BE(timestamp, start + 35);
  buf.writeBigInt64BE(-1n, start + 43); // producerId: none (not idempotent)
  buf.writeInt16BE(0, start + 51); // producerEpoch, as the client writes it
  buf.writeInt32BE(0, start + 53); // baseSequence, as the client writes it
  buf.writeInt32BE(count, start + 57);
  let pos = start + BATCH_HEADER_BYTES;
  for (let i = 0; i < count; i++) {
    const record = records[i]!;
    pos = writeVarint(buf, pos, bodies[bodyAt + i]!);
    buf[pos++] = 0; // attributes
    buf[pos++] = 0; // timestampDelta
    pos = writeVarint(buf, pos, i);
    pos = writeBytes(buf, pos, record.key);
    pos = writeBytes(buf, pos, record.value);
    const headers = record.headers;
    pos = writeVarint(buf, pos, headers?.size ?? 0);
    if (headers)
      for (const [key, value] of headers) {
        const keyBytes = Buffer.byteLength(key);
        pos = writeVarint(buf, pos, keyBytes);
        pos += buf.write(key, pos, keyBytes, 'utf8');
        pos = writeBytes(buf, pos, value);
      }
  }
  buf.writeInt32BE(pos - start - BATCH_LENGTH_AT - 4, start + BATCH_LENGTH_AT);
  buf.writeUInt32BE(crc32c(buf.subarray(start + ATTRIBUTES_AT, pos)), start + CRC_AT);
  return pos;
}

/**
 * The Produce request body for `version` (the client adds the request header and the size). Every
 * record of the request carries `timestamp` (the client's default, one `Date.now()` per request).
 * `alloc` gives the buffer for `size` bytes, all of which are written: the publisher passes a reused
 * one (see `RequestScratch` in kafkaPublisher.ts).
 */
export function encodeProduceRequest(
  version: number,
  acks: number,
  timeoutMs: number,
  topics: TopicRecords[],
  timestamp: bigint,
  alloc: (size: number) => Buffer = (size) => Buffer.allocUnsafe(size),
): Buffer {
  if (version < MIN_PRODUCE_VERSION || version > MAX_PRODUCE_VERSION) throw new Error(`Produce version ${version} is not supported`);
  const flexible = version >= FIRST_FLEXIBLE_VERSION;
  const arrayBytes = (n: number): number => (flexible ? uvarintBytes(n + 1) : 4);
  // Sizes first: the record bodies' lengths are each record's prefix, so they are kept for the writing pass.
  const bodies: number[] = [];
  const batches: number[] = [];
  let size = (flexible ? 1 : 2) + 2 + 4 + arrayBytes(topics.length) + (flexible ? 1 : 0);
  for (const { topic, partitions } of topics) {
    const name = Buffer.byteLength(topic);
    size += (flexible ? uvarintBytes(name + 1) : 2) + name + arrayBytes(partitions.length) + (flexible ? 1 : 0);
    for (const { records } of partitions) {
      if (records.length === 0) throw new Error(`no records for a partition of topic ${topic}`);
      const batch = batchBytes(records, bodies);
      batches.push(batch);
      size += 4 + (flexible ? uvarintBytes(batch + 1) : 4) + batch + (flexible ? 1 : 0);
    }
  }

  const buf = alloc(size);
  if (buf.length !== size) throw new Error(`a Produce request of ${size} bytes got a buffer of ${buf.length}`);
  let pos = flexible ? writeUvarint(buf, 0, 0) : buf.writeInt16BE(-1, 0); // transactional id: null
  pos = buf.writeInt16BE(acks, pos);
  pos = buf.writeInt32BE(timeoutMs, pos);
  const writeCount = (n: number): number => (flexible ? writeUvarint(buf, pos, n + 1) : buf.writeInt32BE(n, pos));
  pos = writeCount(topics.length);
  let batchAt = 0;
  let bodyAt = 0;
  for (const { topic, partitions } of topics) {
    const name = Buffer.byteLength(topic);
    pos = flexible ? writeUvarint(buf, pos, name + 1) : buf.writeInt16BE(name, pos);
    pos += buf.write(topic, pos, name, 'utf8');
    pos = writeCount(partitions.length);
    for (const { partition, records } of partitions) {
      pos = buf.writeInt32BE(partition, pos);
      const batch = batches[batchAt++]!;
      pos = flexible ? writeUvarint(buf, pos, batch + 1) : buf.writeInt32BE(batch, pos);
      pos = writeBatch(buf, pos, records, bodies, bodyAt, timestamp);
      bodyAt += records.length;
      if (flexible) buf[pos++] = 0; // tagged fields of the partition
    }
    if (flexible) buf[pos++] = 0; // of the topic
  }
  if (flexible) buf[pos++] = 0; // of the request
  if (pos !== size) throw new Error(`Produce request encoded to ${pos} bytes, sized ${size}`);
  return buf;
}
