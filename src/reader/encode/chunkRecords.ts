/**
 * A snapshot chunk's native records, written into a few large buffers instead of one buffer per value:
 * the same bytes `layoutRecord` (toRecord.ts) makes, laid out so that the whole
 * chunk can be handed between threads without a copy (the buffers are transferred, the index is an
 * `Int32Array`). `writeChunk` runs where the chunk is encoded (a `worker_threads` encoder, or the main
 * thread when there is none); `chunkRecord` gives a row's record back as views of those buffers.
 */
import type { RowJsonEncoder } from './rowJson.js';
import type { OutRecord } from '../publish/publisher.js';

/** A snapshot chunk's records as data (`RecordBuilder.rowsLayout`). */
export interface RowsLayout {
  topic: string;
  /** The value's text before the row's JSON. */
  head: string;
  /** Between the row's JSON and the key's (the key is the value's last field, closed by `}`). */
  middle: string;
  /** A record's value and key bytes together may be at most this (the hub's limit less the record overhead). */
  limit: number;
}

/** A row's record value as text: the key's JSON is its last field, so the record key is those bytes of it. */
export function rowRecordText(layout: RowsLayout, afterJson: string, keyJson: string): string {
  return layout.head + afterJson + layout.middle + keyJson + '}';
}

/** Values of a chunk share buffers of this size (a larger value gets one of its own). */
const SEGMENT_BYTES = 1024 * 1024;
/** Per row in `EncodedChunk.index`: segment (−1: no record, see `chunkRecord`), value start, value end, key start. */
const SLOTS = 4;

export interface EncodedChunk {
  /** The buffers the records' bytes are in (their own `ArrayBuffer`s, so transferable). */
  segments: ArrayBuffer[];
  /** `SLOTS` integers per row, from the first row written; the key ends where the value's closing `}` starts. */
  index: Int32Array;
  /** The rows written are `from` up to this one (exclusive). */
  end: number;
}

/**
 * Writes the records of `rows` (text cells, as the snapshot reads them). A row whose key has a NULL
 * cell, or whose record is over `layout.limit`, gets none: the caller builds it from the row object,
 * which names the problem or takes the claim-check path.
 * From row `from`, every row; `oneSegment`: only the rows that fit in one buffer (at least one), so
 * that the main thread, which queues them before it writes more, holds no more than that at a time.
 */
export function writeChunk(
  json: RowJsonEncoder,
  layout: RowsLayout,
  rows: readonly (readonly (string | null)[])[],
  from = 0,
  oneSegment = false,
): EncodedChunk {
  const index = new Int32Array((rows.length - from) * SLOTS);
  const segments: ArrayBuffer[] = [];
  let segment = Buffer.allocUnsafeSlow(0);
  let at = 0;
  for (let j = from; j < rows.length; j++) {
    const raw = rows[j]!;
    const after = json.row(raw);
    const keyJson = json.keyIsRow ? after : json.key(raw);
    const slot = (j - from) * SLOTS;
    index[slot] = -1;
    if (keyJson === null) continue;
    const text = rowRecordText(layout, after, keyJson);
    // A string has at least as many UTF-8 bytes as UTF-16 code units: over the limit whatever it encodes to.
    if (text.length + keyJson.length > layout.limit) continue;
    // A UTF-16 code unit is at most 3 bytes of UTF-8: with that much room the write is never cut short.
    const room = text.length * 3;
    if (at + room > segment.length) {
      // This row is written again by the next call (one row a buffer's worth: the cost is small).
      if (oneSegment && segments.length > 0) return { segments, index: index.subarray(0, slot), end: j };
      segment = Buffer.allocUnsafeSlow(Math.max(SEGMENT_BYTES, room));
      segments.push(segment.buffer);
      at = 0;
    }
    const bytes = segment.write(text, at);
    const keyBytes = Buffer.byteLength(keyJson);
    if (bytes + keyBytes > layout.limit) continue;
    index[slot] = segments.length - 1;
    index[slot + 1] = at;
    index[slot + 2] = at + bytes;
    index[slot + 3] = at + bytes - 1 - keyBytes;
    at += bytes;
  }
  return { segments, index, end: rows.length };
}

/** The record of the `j`-th row written (views of the chunk's buffers, no copy), or null when `writeChunk` gave it none. */
export function chunkRecord(chunk: EncodedChunk, j: number, topic: string): OutRecord | null {
  const slot = j * SLOTS;
  const s = chunk.index[slot]!;
  if (s < 0) return null;
  const segment = chunk.segments[s]!;
  const start = chunk.index[slot + 1]!;
  const end = chunk.index[slot + 2]!;
  const keyStart = chunk.index[slot + 3]!;
  return { topic, key: Buffer.from(segment, keyStart, end - 1 - keyStart), value: Buffer.from(segment, start, end - start) };
}

/**
 * Record values written one after another into shared 1 MiB buffers, each value a view of one: the
 * stream's records, made one at a time as changes arrive, get `writeChunk`'s saving (one UTF-8 pass,
 * a hundredth as many `ArrayBuffer`s). A buffer is freed once every record in it is; so at most one
 * buffer beyond the records in flight is held.
 */
export class RecordBuffers {
  private segment = Buffer.allocUnsafeSlow(0);
  private at = 0;

  /** `text`'s UTF-8 bytes. */
  write(text: string): Buffer {
    const room = text.length * 3;
    // A value too large to share a buffer gets its own, of its size.
    if (room > SEGMENT_BYTES) return Buffer.from(text);
    if (this.at + room > this.segment.length) {
      this.segment = Buffer.allocUnsafeSlow(SEGMENT_BYTES);
      this.at = 0;
    }
    const bytes = this.segment.write(text, this.at);
    const value = this.segment.subarray(this.at, this.at + bytes);
    this.at += bytes;
    return value;
  }
}
