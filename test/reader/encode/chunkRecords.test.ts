import { describe, expect, test } from '@jest/globals';
import { chunkRecord, RecordBuffers, writeChunk } from '../../../src/reader/encode/chunkRecords.js';
import { layoutRecord } from '../../../src/reader/encode/toRecord.js';
import type { RowsLayout } from '../../../src/reader/encode/chunkRecords.js';
import { idDocJson } from '../fixtures/idDocRows.js';

const layout = (limit = 10_000_000): RowsLayout => ({ topic: 'hub', head: '{"before":null,"after":', middle: ',"source":{"é":"☃"},"op":"r","key":', limit });
const json = idDocJson;

/** What the one-record path makes of a row (the reference). */
const reference = (l: RowsLayout, raw: (string | null)[]) => {
  const key = json.key(raw);
  return key === null ? null : layoutRecord(l, json.row(raw), key);
};

describe('writeChunk / chunkRecord: a chunk of records in shared buffers', () => {
  test('byte-identical to layoutRecord for every row, across segment boundaries and multi-byte text', () => {
    const rows: (string | null)[][] = [];
    // ~3 MB of values: several 1 MiB segments, rows of 1–4 byte characters, a value larger than a segment.
    for (let i = 0; i < 6_000; i++) rows.push([String(i), ['a', 'é', '☃', '😀'][i % 4]!.repeat(i % 300)]);
    rows.push(['900719925474099312345', 'x'.repeat(2_500_000)]);
    rows.push(['-1', '"}\u2028\\ \u0000']);
    const l = layout();
    const chunk = writeChunk(json, l, rows, new RecordBuffers());
    expect(chunk.segments.length).toBeGreaterThan(3);
    for (let j = 0; j < rows.length; j++) {
      const got = chunkRecord(chunk, j, l.topic)!;
      const want = reference(l, rows[j]!)!;
      expect(got.topic).toBe('hub');
      expect(got.key!.equals(want.key!)).toBe(true);
      expect(got.value!.equals(want.value!)).toBe(true);
    }
  });

  test('no record for a NULL key cell or an over-limit record (the row-object path names or stores them)', () => {
    const l = layout(200);
    const rows: (string | null)[][] = [
      ['1', 'small'],
      [null, 'key cell NULL'],
      ['2', 'x'.repeat(300)],
      ['3', 'after the large one'],
    ];
    const chunk = writeChunk(json, l, rows, new RecordBuffers());
    expect(chunkRecord(chunk, 0, 'hub')!.value!.toString()).toBe(reference(l, rows[0]!)!.value!.toString());
    expect(chunkRecord(chunk, 1, 'hub')).toBeNull();
    expect(reference(l, rows[2]!)).toBeNull();
    expect(chunkRecord(chunk, 2, 'hub')).toBeNull();
    expect(chunkRecord(chunk, 3, 'hub')!.value!.toString()).toBe(reference(l, rows[3]!)!.value!.toString());
  });

  test('one buffer at a time (the main thread): consecutive calls give every row once, each within one buffer', () => {
    const rows: (string | null)[][] = [];
    for (let i = 0; i < 5_000; i++) rows.push([String(i), '☃'.repeat(i % 700)]);
    const l = layout();
    const buffers = new RecordBuffers();
    let calls = 0;
    for (let from = 0; from < rows.length; calls++) {
      const chunk = writeChunk(json, l, rows, buffers, from, true);
      expect(chunk.segments).toHaveLength(1);
      expect(chunk.end).toBeGreaterThan(from);
      for (let j = from; j < chunk.end; j++) expect(chunkRecord(chunk, j - from, 'hub')!.value!.equals(reference(l, rows[j]!)!.value!)).toBe(true);
      from = chunk.end;
    }
    // About 5.3 MB of values: several buffers' worth, one call each.
    expect(calls).toBeGreaterThan(4);
  });

  test('an empty chunk has no segments', () => {
    const chunk = writeChunk(json, layout(), [], new RecordBuffers());
    expect(chunk.segments).toEqual([]);
    expect(chunk.index.length).toBe(0);
  });
});

describe('RecordBuffers: the stream records written into shared buffers', () => {
  test('each value is its text in UTF-8, across buffer boundaries; earlier values are never overwritten', () => {
    const buffers = new RecordBuffers();
    const texts = Array.from({ length: 20_000 }, (_, i) => ['a', 'é', '☃', '😀'][i % 4]!.repeat(i % 400) + String(i));
    const values = texts.map((t) => buffers.write(t));
    texts.forEach((t, i) => expect(values[i]!.equals(Buffer.from(t))).toBe(true));
    // Shared: many values per ArrayBuffer (about 4.6 MB in all).
    const arrayBuffers = new Set(values.map((v) => v.buffer));
    expect(arrayBuffers.size).toBeGreaterThan(3);
    expect(arrayBuffers.size).toBeLessThan(20);
  });

  test('a value too large to share a buffer gets one of its own', () => {
    const buffers = new RecordBuffers();
    const small = buffers.write('x');
    const large = buffers.write('y'.repeat(2_000_000));
    expect(large.length).toBe(2_000_000);
    expect(large.buffer).not.toBe(small.buffer);
    expect(buffers.write('z').buffer).toBe(small.buffer);
  });
});

describe('RecordBuffers, tracked: a snapshot chunk’s buffers freed when it is released', () => {
  /** Values of about 100 KB, so that ten fill a 1 MiB buffer. */
  const text = (i: number) => String(i % 10).repeat(100_000);

  test('a buffer is freed once every chunk with records in it is released and the writer has left it; the others keep their bytes', () => {
    const buffers = new RecordBuffers(true);
    // Two chunks written at once (two readers), their values interleaved in the same buffers.
    const a: ArrayBuffer[] = [];
    const b: ArrayBuffer[] = [];
    const values: { chunk: 'a' | 'b'; value: Buffer<ArrayBuffer>; text: string }[] = [];
    for (let i = 0; i < 30; i++) {
      const chunk = i < 20 && i % 2 === 0 ? 'a' : 'b';
      const value = buffers.write(text(i));
      buffers.segmentOf(chunk === 'a' ? a : b, value);
      values.push({ chunk, value, text: text(i) });
    }
    expect(a.length).toBeGreaterThan(1);
    const current = values.at(-1)!.value.buffer;
    expect(a).not.toContain(current);
    buffers.release(a);
    // Every buffer b shares with a keeps its bytes; a has none of its own (the two were interleaved throughout).
    for (const v of values.filter((x) => x.chunk === 'b')) expect(v.value.toString()).toBe(v.text);
    expect(a.every((s) => s.byteLength > 0)).toBe(true);
    buffers.release(b);
    for (const s of b) expect(s.byteLength).toBe(s === current ? 1024 * 1024 : 0);
    expect(a.every((s) => s.detached)).toBe(true);
    // The buffer being written into is freed when the writer leaves it (room for 900 KB is not left in it).
    expect(buffers.write('x'.repeat(300_000)).buffer).not.toBe(current);
    expect(current.detached).toBe(true);
  });

  test('a chunk that is not released keeps its buffers; one released keeps none, its own large value included', () => {
    const buffers = new RecordBuffers(true);
    const kept: ArrayBuffer[] = [];
    const freed: ArrayBuffer[] = [];
    const keptValues = Array.from({ length: 25 }, (_, i) => {
      const v = buffers.write(text(i));
      buffers.segmentOf(kept, v);
      return v;
    });
    const large = buffers.write('L'.repeat(2_000_000));
    buffers.segmentOf(freed, large);
    for (let i = 0; i < 25; i++) buffers.segmentOf(freed, buffers.write(text(i)));
    buffers.release(freed);
    expect(large.buffer.detached).toBe(true);
    expect(large.length).toBe(0);
    keptValues.forEach((v, i) => expect(v.toString()).toBe(text(i)));
  });

  test('a buffer of its own (a reader thread’s) held for a chunk is freed at its release', () => {
    const buffers = new RecordBuffers(true);
    const own = new ArrayBuffer(1024);
    buffers.hold(own);
    buffers.hold(own);
    buffers.release([own]);
    expect(own.detached).toBe(false);
    buffers.release([own]);
    expect(own.detached).toBe(true);
  });

  test('untracked (the stream’s): release frees nothing, the collector does', () => {
    const buffers = new RecordBuffers();
    const segments: ArrayBuffer[] = [];
    const values = Array.from({ length: 25 }, (_, i) => {
      const v = buffers.write(text(i));
      buffers.segmentOf(segments, v);
      return v;
    });
    buffers.release(segments);
    buffers.write('x'.repeat(1_000_000));
    values.forEach((v, i) => expect(v.toString()).toBe(text(i)));
  });
});
