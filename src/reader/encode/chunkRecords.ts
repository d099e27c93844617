/**
 * A snapshot chunk's native records, written into a few large buffers instead of one buffer per value:
 * the same bytes `layoutRecord` (toRecord.ts) makes, laid out so that the whole
 * chunk can be handed between threads without a copy (the buffers are transferred, the index is an
 * `Int32Array`). `writeChunk` runs where the chunk is encoded (a snapshot reader thread, or the main
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

/** Values share buffers of this size (a value that may be larger gets one of its own). */
const SEGMENT_BYTES = 1024 * 1024;
/** Per row in `EncodedChunk.index`: segment (−1: no record, see `chunkRecord`), value start, value end, key start. */
export const SLOTS = 4;

export interface EncodedChunk {
  /** The buffers the records' bytes are in (`RecordBuffers`': their own `ArrayBuffer`s, so transferable). */
  segments: ArrayBuffer[];
  /** `SLOTS` integers per row, from the first row written; the key ends where the value's closing `}` starts. */
  index: Int32Array;
  /** The rows written are `from` up to this one (exclusive). */
  end: number;
}

/**
 * Writes the records of `rows` (text cells, as the snapshot reads them) into `buffers`. A row whose key
 * has a NULL cell, or whose record is over `layout.limit`, gets none: the caller builds it from the row
 * object, which names the problem or takes the claim-check path.
 * From row `from`, every row; `oneSegment`: only the rows that go into one buffer (at least one), so
 * that the main thread, which queues them before it writes more, holds no more than that at a time.
 * An encoder thread passes `buffers` of the chunk's own, so that its buffers can be transferred.
 */
export function writeChunk(
  json: RowJsonEncoder,
  layout: RowsLayout,
  rows: readonly (readonly (string | null)[])[],
  buffers: RecordBuffers,
  from = 0,
  oneSegment = false,
): EncodedChunk {
  const index = new Int32Array((rows.length - from) * SLOTS);
  const segments: ArrayBuffer[] = [];
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
    // This row's JSON is made again by the next call (one row a buffer's worth: the cost is small).
    if (oneSegment && segments.length > 0 && !buffers.fits(text)) return { segments, index: index.subarray(0, slot), end: j };
    const value = buffers.write(text);
    const keyBytes = Buffer.byteLength(keyJson);
    if (value.length + keyBytes > layout.limit) continue;
    const end = value.byteOffset + value.length;
    index[slot] = buffers.segmentOf(segments, value);
    index[slot + 1] = value.byteOffset;
    index[slot + 2] = end;
    index[slot + 3] = end - 1 - keyBytes;
  }
  return { segments, index, end: rows.length };
}

/** Whether `writeChunk` gave the `j`-th row written a record. */
export function chunkHasRecord(chunk: EncodedChunk, j: number): boolean {
  return chunk.index[j * SLOTS]! >= 0;
}

/** The key and value bytes of the `j`-th row's record (one `chunkHasRecord` is true of). */
export function chunkRecordBytes(chunk: EncodedChunk, j: number): number {
  const slot = j * SLOTS;
  const end = chunk.index[slot + 2]!;
  return end - chunk.index[slot + 1]! + (end - 1 - chunk.index[slot + 3]!);
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
 *
 * `tracked` (the snapshot's): a buffer is freed the moment the last chunk with records in it is
 * released (`segmentOf` holds it for a chunk, `release` lets go), not at the collector's next full
 * collection. The records' views stay on the old-generation heap until then, and so did their
 * buffers: a wide snapshot's external memory swung between 20 and 60 MB while 8 MB were in flight
 * (docs/reader.md, snapshot run 17).
 */
export class RecordBuffers {
  private segment = Buffer.allocUnsafeSlow(0);
  private at = 0;
  /** Tracked: how many hold each buffer (every chunk with records in it, and this writer while it writes into it). */
  private readonly holds: WeakMap<ArrayBuffer, number> | null;

  constructor(tracked = false) {
    this.holds = tracked ? new WeakMap() : null;
  }

  /** Whether `write(text)` puts it into the buffer the last value went into. */
  fits(text: string): boolean {
    // A UTF-16 code unit is at most 3 bytes of UTF-8: with that much room the write is never cut short.
    const room = text.length * 3;
    return room <= SEGMENT_BYTES && this.at + room <= this.segment.length;
  }

  /** `text`'s UTF-8 bytes, a view of a shared buffer (their own buffer, not from Node's pool, for a value too large to share one). */
  write(text: string): Buffer<ArrayBuffer> {
    const room = text.length * 3;
    if (room > SEGMENT_BYTES) return Buffer.from(text);
    this.reserve(room);
    return this.taken(this.segment.write(text, this.at));
  }

  /** Bytes `start`..`end` of `source`, copied into a shared buffer (as `write`; their own buffer when larger than one). */
  copy(source: Buffer, start: number, end: number): Buffer<ArrayBuffer> {
    const n = end - start;
    if (n > SEGMENT_BYTES) {
      const own = Buffer.allocUnsafeSlow(n);
      source.copy(own, 0, start, end);
      return own;
    }
    this.reserve(n);
    return this.taken(source.copy(this.segment, this.at, start, end));
  }

  /**
   * The index in a chunk's `segments` of the buffer `value` (just written) is in: the last one, or
   * added, and then held for the chunk until it is released. Values are written in order, so a chunk
   * never comes back to a buffer it has left.
   */
  segmentOf(segments: ArrayBuffer[], value: Buffer<ArrayBuffer>): number {
    if (segments.at(-1) !== value.buffer) {
      segments.push(value.buffer);
      this.hold(value.buffer);
    }
    return segments.length - 1;
  }

  /** Tracked: `buffer` (a chunk's, perhaps a reader thread's) is held until `release`; otherwise nothing. */
  hold(buffer: ArrayBuffer): void {
    this.holds?.set(buffer, (this.holds.get(buffer) ?? 0) + 1);
  }

  /**
   * Tracked: a chunk's records in `segments` were delivered and are read no more (the publisher has
   * sent them and keeps no reference: `Publisher.send`); a buffer nothing else holds is freed now.
   * A view of it that is still about reads as empty: a bug shows as a missing value, never as another
   * record's bytes.
   */
  release(segments: readonly ArrayBuffer[]): void {
    if (this.holds === null) return;
    for (const s of segments) {
      const n = (this.holds.get(s) ?? 1) - 1;
      if (n > 0) {
        this.holds.set(s, n);
      } else {
        this.holds.delete(s);
        s.transfer(0);
      }
    }
  }

  /** Room for `bytes` (at most a segment) in the current buffer, or a fresh one. */
  private reserve(bytes: number): void {
    if (this.at + bytes <= this.segment.length) return;
    const left = this.segment.buffer;
    this.segment = Buffer.allocUnsafeSlow(SEGMENT_BYTES);
    this.at = 0;
    if (this.holds === null) return;
    this.hold(this.segment.buffer);
    // The first segment (empty) was never held.
    if (this.holds.has(left)) this.release([left]);
  }

  /** The `bytes` just written at `at`, as a view; the next value goes after them. */
  private taken(bytes: number): Buffer<ArrayBuffer> {
    const value = this.segment.subarray(this.at, this.at + bytes);
    this.at += bytes;
    return value;
  }
}
