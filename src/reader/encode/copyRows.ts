/**
 * A snapshot range read with `COPY (SELECT …) TO STDOUT` and transcoded from its bytes straight into
 * records (`EncodedChunk`), byte-identical to `writeChunk` of the same rows read as text.
 *
 * Why: read through `pg` a row is a DataRow parsed into one string per cell, which the row JSON writer
 * then reads, concatenates and writes back as UTF-8. On the wide benchmark table that was 20 strings
 * a row held until its chunk's turn, so the collector copied them from scavenge to scavenge (a fifth
 * of the reader's CPU), plus a UTF-8 decode and encode of every byte (docs/reader.md "Snapshot
 * benchmark", run 13). COPY's rows arrive as bytes (one CopyData message a row, consumed while the
 * message is in `pg`'s receive buffer), and most cells' JSON is their bytes as they are: integers,
 * booleans, numeric and the plain text types quoted, text without anything JSON escapes, jsonb without
 * its blanks, timestamps re-cut by position. A cell that is anything else (a COPY escape or a character
 * JSON escapes, a float, an array, bytea, a long int8, a jsonb with an array-index key, bytes that are
 * not UTF-8) is decoded into its text, as `pg` would have made it, and written by `cellJson`: the
 * text path's own writer, so the two cannot disagree.
 *
 * COPY text format: cells separated by tabs, a row ended by a newline, NULL as `\N`, and in a cell a
 * backslash starts an escape (`\\`, `\b`, `\f`, `\n`, `\r`, `\t`, `\v`; PostgreSQL's output uses no
 * other). Only type syntax Node strips is used here (a reader thread imports it).
 */
import { isUtf8 } from 'node:buffer';
import type { Client } from 'pg';
import type { CellJson, RowJsonColumn } from './rowJson.js';
import {
  CELL_BOOL,
  CELL_BYTEA,
  CELL_FLOAT,
  CELL_INT_ARRAY,
  CELL_INT,
  CELL_INT8,
  CELL_JSONB,
  CELL_QUOTED,
  CELL_STRING,
  CELL_TIMESTAMP,
  CELL_TIMESTAMPTZ,
  DATE_TIME_DIGITS,
  cellJson,
  cellKind,
  isArrayIndex,
} from './rowJson.js';
import type { EncodedChunk, RowsLayout } from './chunkRecords.js';
import { RecordBuffers, SLOTS } from './chunkRecords.js';
import { CELL_BYTES, NULL_BYTES, ROW_BYTES } from '../snapshot/chunkBytes.js';

/** A range's records, its row count, `chunkBytes`' estimate of its cells, and the rows the caller needs as text. */
export interface CopyChunk {
  chunk: EncodedChunk;
  count: number;
  cellBytes: number;
  /** [row index, text cells]: the rows without a record (a NULL key cell, over the limit), and the last row. */
  spare: [number, (string | null)[]][];
  /** The same rows as their COPY bytes instead, from a writer made `forThread` (`copyLineCells` reads them). */
  spareBytes: [number, Uint8Array][];
  /** The bytes of the records written (what the chunk holds until it is queued). */
  recordBytes: number;
}

const TAB = 9;
const NEWLINE = 10;
const QUOTE = 34;
const BACKSLASH = 92;
const NULL_JSON = Buffer.from('null');
const TRUE_JSON = Buffer.from('true');
const FALSE_JSON = Buffer.from('false');

/** A cell a reader thread makes text of at most (see `CopyRowWriter.of`): its string, its decoded value and its JSON stay well under the thread's heap. */
export const THREAD_TEXT_CELL_BYTES = 1024 * 1024;

/** The writer's scratch buffers are kept between chunks up to this size. */
const SCRATCH_KEPT_BYTES = 1024 * 1024;

/** Copies up to this many bytes in a loop: `Buffer.copy` is a native call, dearer than that for the short pieces (labels, numbers) a row is mostly made of. */
const SHORT_COPY = 48;

/**
 * The transcoder of one table's COPY rows. `begin` a chunk, feed it COPY's data (`data`, each piece
 * consumed before it returns, so a view of `pg`'s receive buffer is fine), then `finish`.
 */
export class CopyRowWriter {
  private readonly n: number;
  private readonly kinds: number[];
  private readonly cells: CellJson[];
  private readonly labels: Buffer[];
  private readonly keyIndex: number[];
  private readonly keyLabels: Buffer[];
  private readonly keyIsRow: boolean;
  private readonly wholeRowKey: boolean;
  // Where column i's JSON went in `out` (−1: left out, as `JSON.stringify` leaves out undefined), for the key.
  private readonly jsonAt: Int32Array;
  private readonly jsonEnd: Int32Array;
  private readonly isNull: Uint8Array;
  private out = Buffer.allocUnsafeSlow(64 * 1024);
  private pos = 0;
  // The chunk being written.
  private head = Buffer.alloc(0);
  private middle = Buffer.alloc(0);
  private limit = 0;
  private buffers = new RecordBuffers();
  private segments: ArrayBuffer[] = [];
  private index = new Int32Array(1024 * SLOTS);
  private count = 0;
  private cellBytes = 0;
  private recordBytes = 0;
  private spare: [number, (string | null)[]][] = [];
  private spareBytes: [number, Uint8Array][] = [];
  // Whether the last row written was given back (`giveBack`).
  private lastGiven = false;
  // A row cut between two pieces of data (COPY sends a row a message, but that is not relied on).
  private partial: Buffer | null = null;
  // The last row's bytes (copied: the piece it came in is gone by `finish`), for its text cells.
  private last = Buffer.allocUnsafeSlow(4096);
  private lastLength = -1;

  private readonly forThread: boolean;

  private constructor(columns: readonly RowJsonColumn[], keyColumns: readonly string[], wholeRowKey: boolean, forThread: boolean) {
    this.forThread = forThread;
    const names = columns.map((c) => c.name);
    this.n = columns.length;
    this.kinds = columns.map(cellKind);
    this.cells = columns.map(cellJson);
    this.labels = names.map((name) => Buffer.from(`${JSON.stringify(name)}:`));
    this.keyIndex = keyColumns.map((k) => names.indexOf(k));
    this.keyLabels = this.keyIndex.map((i) => this.labels[i]!);
    this.wholeRowKey = wholeRowKey;
    this.keyIsRow = wholeRowKey && this.keyIndex.length === this.n && this.keyIndex.every((k, i) => k === i);
    this.jsonAt = new Int32Array(this.n);
    this.jsonEnd = new Int32Array(this.n);
    this.isNull = new Uint8Array(this.n);
  }

  /**
   * The writer of rows with these columns, in COPY's column order, or null where `rowJsonEncoder` has
   * none (a column name that is an array index, a key column not among them): those rows go through the row object.
   * `forThread`: for a reader thread, whose heap is small (`ReaderThreads`), and where one allocation past
   * its limit ends the whole process, not only the thread (V8 cannot grow the heap for it): the rows
   * without a record come back as their bytes (`spareBytes`), made into text on the main thread, and so
   * does a row with a cell over `THREAD_TEXT_CELL_BYTES` that the text path would have to make a string of.
   */
  static of(columns: readonly RowJsonColumn[], keyColumns: readonly string[], wholeRowKey: boolean, forThread = false): CopyRowWriter | null {
    if (columns.length === 0) return null;
    if (columns.some((c) => isArrayIndex(c.name, 0, c.name.length))) return null;
    if (keyColumns.some((k) => !columns.some((c) => c.name === k))) return null;
    return new CopyRowWriter(columns, keyColumns, wholeRowKey, forThread);
  }

  /** Starts a chunk: its envelope (`layout`) and where its records go. */
  begin(layout: RowsLayout, buffers: RecordBuffers): void {
    this.head = Buffer.from(layout.head);
    this.middle = Buffer.from(layout.middle);
    this.limit = layout.limit;
    this.buffers = buffers;
    this.segments = [];
    this.index = new Int32Array(1024 * SLOTS);
    this.count = 0;
    this.cellBytes = 0;
    this.recordBytes = 0;
    this.spare = [];
    this.spareBytes = [];
    this.lastGiven = false;
    this.partial = null;
    this.lastLength = -1;
    // A huge row grew them: give that memory back at the next chunk instead of holding it for the table.
    if (this.out.length > SCRATCH_KEPT_BYTES) this.out = Buffer.allocUnsafeSlow(64 * 1024);
    if (this.last.length > SCRATCH_KEPT_BYTES) this.last = Buffer.allocUnsafeSlow(4096);
  }

  /** A piece of COPY's output: whole rows, possibly with the end of the last piece's cut row before them and the start of a row after. */
  data(piece: Buffer): void {
    let buf = piece;
    if (this.partial !== null) {
      buf = Buffer.concat([this.partial, piece]);
      this.partial = null;
    }
    let start = 0;
    let lastStart = -1;
    let lastEnd = -1;
    for (;;) {
      const end = buf.indexOf(NEWLINE, start);
      if (end < 0) break;
      this.row(buf, start, end);
      lastStart = start;
      lastEnd = end;
      start = end + 1;
    }
    if (start < buf.length) this.partial = Buffer.from(buf.subarray(start));
    if (lastStart >= 0) {
      const n = lastEnd - lastStart;
      if (this.last.length < n) this.last = Buffer.allocUnsafeSlow(Math.max(n, this.last.length * 2));
      buf.copy(this.last, 0, lastStart, lastEnd);
      this.lastLength = n;
    }
  }

  /** The chunk's records; the last row and every row without a record come back as text. */
  finish(): CopyChunk {
    if (this.partial !== null) throw new Error(`COPY output ended inside a row (${this.partial.length} bytes without a newline)`);
    if (this.count > 0 && !this.lastGiven) this.giveBack(this.count - 1, this.last, 0, this.lastLength);
    return {
      chunk: { segments: this.segments, index: this.index.subarray(0, this.count * SLOTS), end: this.count },
      count: this.count,
      cellBytes: this.cellBytes,
      spare: this.spare,
      spareBytes: this.spareBytes,
      recordBytes: this.recordBytes,
    };
  }

  /** Room for `bytes` more in `out`. */
  private room(bytes: number): void {
    if (this.pos + bytes <= this.out.length) return;
    let size = this.out.length * 2;
    while (size < this.pos + bytes) size *= 2;
    const bigger = Buffer.allocUnsafeSlow(size);
    this.out.copy(bigger, 0, 0, this.pos);
    this.out = bigger;
  }

  /** Appends `src[from, to)` (room already made). */
  private put(src: Buffer, from: number, to: number): void {
    const out = this.out;
    let p = this.pos;
    if (to - from > SHORT_COPY) {
      src.copy(out, p, from, to);
      p += to - from;
    } else {
      for (let i = from; i < to; i++) out[p++] = src[i]!;
    }
    this.pos = p;
  }

  private byte(b: number): void {
    this.out[this.pos++] = b;
  }

  /** One row: the bytes `buf[start, end)`, without its newline. */
  private row(buf: Buffer, start: number, end: number): void {
    const j = this.count++;
    if (this.index.length < this.count * SLOTS) {
      const bigger = new Int32Array(this.index.length * 2);
      bigger.set(this.index);
      this.index = bigger;
    }
    const slot = j * SLOTS;
    this.index[slot] = -1;
    this.lastGiven = false;
    this.pos = 0;
    // Room is made as the record grows: a cell's fast path writes at most its length and a few bytes, the
    // text path makes room for its JSON, the key for its own (a 100 MB cell must not cost a 400 MB scratch).
    this.room(this.head.length + 1);
    this.put(this.head, 0, this.head.length);
    this.byte(123); // {
    let cellBytes = ROW_BYTES;
    let first = true;
    let at = start;
    for (let i = 0; i < this.n; i++) {
      if (at > end) throw new Error(`a COPY row has ${i} of the table's ${this.n} columns`);
      let stop = at;
      while (stop < end && buf[stop] !== TAB) stop++;
      const len = stop - at;
      const label = this.labels[i]!;
      this.room(1 + label.length + len + 8);
      const mark = this.pos;
      if (!first) this.byte(44); // ,
      this.put(label, 0, label.length);
      const jsonStart = this.pos;
      this.isNull[i] = 0;
      if (isNullCell(buf, at, stop)) {
        this.put(NULL_JSON, 0, 4);
        this.isNull[i] = 1;
        cellBytes += NULL_BYTES;
      } else {
        cellBytes += CELL_BYTES + len;
        if (!this.cell(i, buf, at, stop)) {
          // The text path: the cell's text as `pg` makes it, through the column's writer.
          if (this.forThread && len > THREAD_TEXT_CELL_BYTES) {
            this.cellBytes += ROW_BYTES + (end - start);
            this.giveBack(j, buf, start, end);
            return;
          }
          this.pos = jsonStart;
          const json = this.cells[i]!(copyCellText(buf, at, stop));
          if (json === undefined) {
            this.pos = mark;
            this.jsonAt[i] = -1;
            at = stop + 1;
            continue;
          }
          this.room(3 * json.length);
          this.pos += this.out.write(json, this.pos);
        }
      }
      this.jsonAt[i] = jsonStart;
      this.jsonEnd[i] = this.pos;
      first = false;
      at = stop + 1;
    }
    if (at <= end) throw new Error(`a COPY row has more than the table's ${this.n} columns`);
    this.cellBytes += cellBytes;
    const rowStart = this.head.length;
    this.room(1 + this.middle.length);
    this.byte(125); // }
    const rowEnd = this.pos;
    this.put(this.middle, 0, this.middle.length);
    const keyStart = this.pos;
    if (this.keyIsRow) {
      this.room(rowEnd - rowStart);
      this.out.copy(this.out, this.pos, rowStart, rowEnd);
      this.pos += rowEnd - rowStart;
    } else if (!this.key()) {
      // A NULL key cell: the row object's path names the problem.
      this.giveBack(j, buf, start, end);
      return;
    }
    const keyBytes = this.pos - keyStart;
    this.room(1);
    this.byte(125); // }
    if (this.pos + keyBytes > this.limit) {
      // Over the hub's limit: the row object's path takes the claim-check route.
      this.giveBack(j, buf, start, end);
      return;
    }
    const value = this.buffers.copy(this.out, 0, this.pos);
    const valueEnd = value.byteOffset + value.length;
    this.index[slot] = this.buffers.segmentOf(this.segments, value);
    this.index[slot + 1] = value.byteOffset;
    this.index[slot + 2] = valueEnd;
    this.index[slot + 3] = valueEnd - 1 - keyBytes;
    this.recordBytes += value.length;
  }

  /** The key's JSON from the row's cells' (key columns in key order); false when a key cell is NULL and the key is not the whole row. */
  private key(): boolean {
    let bytes = 2;
    for (const i of this.keyIndex) {
      if (this.isNull[i] === 1 && !this.wholeRowKey) return false;
      if (this.jsonAt[i]! >= 0) bytes += this.labels[i]!.length + 1 + this.jsonEnd[i]! - this.jsonAt[i]!;
    }
    this.room(bytes);
    this.byte(123); // {
    let first = true;
    for (let k = 0; k < this.keyIndex.length; k++) {
      const i = this.keyIndex[k]!;
      const from = this.jsonAt[i]!;
      if (from < 0) continue;
      if (!first) this.byte(44);
      first = false;
      const label = this.keyLabels[k]!;
      this.put(label, 0, label.length);
      this.put(this.out, from, this.jsonEnd[i]!);
    }
    this.byte(125); // }
    return true;
  }

  /** Writes cell `buf[at, stop)` of column i as JSON from its bytes, or returns false (nothing kept): the text path's. */
  private cell(i: number, buf: Buffer, at: number, stop: number): boolean {
    const len = stop - at;
    switch (this.kinds[i]) {
      case CELL_INT:
        this.put(buf, at, stop);
        return true;
      case CELL_INT8:
        if (len > 15) return false;
        this.put(buf, at, stop);
        return true;
      case CELL_BOOL:
        if (len !== 1) return false;
        if (buf[at] === 116) this.put(TRUE_JSON, 0, 4);
        else this.put(FALSE_JSON, 0, 5);
        return true;
      case CELL_QUOTED:
        // Their output never has a backslash; if it did, it would be a COPY escape.
        for (let k = at; k < stop; k++) if (buf[k] === BACKSLASH) return false;
        this.byte(QUOTE);
        this.put(buf, at, stop);
        this.byte(QUOTE);
        return true;
      case CELL_STRING: {
        let high = false;
        for (let k = at; k < stop; k++) {
          const c = buf[k]!;
          if (c < 32 || c === QUOTE || c === BACKSLASH) return false;
          if (c >= 128) high = true;
        }
        if (high && !isUtf8(buf.subarray(at, stop))) return false;
        this.byte(QUOTE);
        this.put(buf, at, stop);
        this.byte(QUOTE);
        return true;
      }
      case CELL_JSONB:
        return this.jsonb(buf, at, stop);
      case CELL_FLOAT:
        if (!plainDecimal(buf, at, stop)) return false;
        this.put(buf, at, stop);
        return true;
      case CELL_BYTEA:
        return this.bytea(buf, at, stop);
      case CELL_INT_ARRAY:
        return this.intArray(buf, at, stop);
      case CELL_TIMESTAMPTZ:
        // `YYYY-MM-DD HH:MM:SS[.f]+00` (the session's UTC) → `"YYYY-MM-DDTHH:MM:SS[.f]Z"`.
        if (len < 22 || buf[stop - 3] !== 43 || buf[stop - 2] !== 48 || buf[stop - 1] !== 48 || !plainDateTime(buf, at, stop - 3)) return false;
        this.byte(QUOTE);
        this.put(buf, at, at + 10);
        this.byte(84); // T
        this.put(buf, at + 11, stop - 3);
        this.byte(90); // Z
        this.byte(QUOTE);
        return true;
      case CELL_TIMESTAMP:
        if (!plainDateTime(buf, at, stop)) return false;
        this.byte(QUOTE);
        this.put(buf, at, at + 10);
        this.byte(84);
        this.put(buf, at + 11, stop);
        this.byte(QUOTE);
        return true;
      default:
        return false;
    }
  }

  /**
   * jsonb's text (`jsonb_out`: canonical JSON with blanks after `,` and `:`) without the blanks between
   * tokens, as `compactJsonb`; false for a backslash (a COPY escape, or a JSON escape inside a
   * string), an array-index key, or bytes that are not UTF-8.
   */
  private jsonb(buf: Buffer, at: number, stop: number): boolean {
    const start = this.pos;
    const out = this.out;
    let p = start;
    let high = false;
    for (let k = at; k < stop; k++) {
      const c = buf[k]!;
      if (c === QUOTE) {
        const open = k;
        out[p++] = c;
        for (k++; k < stop; k++) {
          const d = buf[k]!;
          if (d === BACKSLASH) return false;
          if (d >= 128) high = true;
          out[p++] = d;
          if (d === QUOTE) break;
        }
        // A key (followed by `:`) that is an array index: the decoder's path orders the keys otherwise.
        if (buf[k + 1] === 58 && arrayIndexBytes(buf, open + 1, k)) return false;
      } else if (c === 32 || c === NEWLINE || c === 13) {
        continue;
      } else if (c === BACKSLASH) {
        return false;
      } else {
        out[p++] = c;
      }
    }
    if (high && !isUtf8(out.subarray(start, p))) return false;
    this.pos = p;
    return true;
  }

  /** bytea's hex output (`\\x…` in COPY, its backslash doubled) → the decoder's JSON: the bytes in base64, quoted. */
  private bytea(buf: Buffer, at: number, stop: number): boolean {
    if (stop - at < 3 || buf[at] !== BACKSLASH || buf[at + 1] !== BACKSLASH || buf[at + 2] !== 120) return false;
    if ((stop - at - 3) % 2 !== 0) return false;
    const out = this.out;
    let p = this.pos;
    out[p++] = QUOTE;
    let k = at + 3;
    // Three bytes (six hex digits) → four characters; room was made for three bytes a cell byte.
    for (; k + 6 <= stop; k += 6) {
      const a = hexByte(buf, k);
      const b = hexByte(buf, k + 2);
      const c = hexByte(buf, k + 4);
      if ((a | b | c) < 0) return false;
      out[p++] = BASE64[a >> 2]!;
      out[p++] = BASE64[((a & 3) << 4) | (b >> 4)]!;
      out[p++] = BASE64[((b & 15) << 2) | (c >> 6)]!;
      out[p++] = BASE64[c & 63]!;
    }
    if (k + 4 === stop) {
      const a = hexByte(buf, k);
      const b = hexByte(buf, k + 2);
      if ((a | b) < 0) return false;
      out[p++] = BASE64[a >> 2]!;
      out[p++] = BASE64[((a & 3) << 4) | (b >> 4)]!;
      out[p++] = BASE64[(b & 15) << 2]!;
      out[p++] = 61; // =
    } else if (k + 2 === stop) {
      const a = hexByte(buf, k);
      if (a < 0) return false;
      out[p++] = BASE64[a >> 2]!;
      out[p++] = BASE64[(a & 3) << 4]!;
      out[p++] = 61;
      out[p++] = 61;
    }
    out[p++] = QUOTE;
    this.pos = p;
    return true;
  }

  /** An int2/int4/oid array's output (`{1,NULL,{2,3}}`) → its JSON (`[1,null,[2,3]]`); a lower-bound decoration (`[0:1]=…`) goes through the decoder. */
  private intArray(buf: Buffer, at: number, stop: number): boolean {
    if (buf[at] !== 123) return false;
    const out = this.out;
    let p = this.pos;
    let depth = 0;
    for (let k = at; k < stop; k++) {
      const c = buf[k]!;
      if (c === 123) {
        out[p++] = 91;
        depth++;
      } else if (c === 125) {
        out[p++] = 93;
        if (--depth < 0) return false;
      } else if (c === 44 || c === 45 || (c >= 48 && c <= 57)) {
        out[p++] = c;
      } else if (c === 78 && k + 3 < stop && buf[k + 1] === 85 && buf[k + 2] === 76 && buf[k + 3] === 76) {
        out[p++] = 110;
        out[p++] = 117;
        out[p++] = 108;
        out[p++] = 108;
        k += 3;
      } else {
        return false;
      }
    }
    if (depth !== 0) return false;
    this.pos = p;
    return true;
  }

  /** Row j (`buf[start, end)`) gets no record: it comes back as text, or as its bytes from a writer `forThread`. */
  private giveBack(j: number, buf: Buffer, start: number, end: number): void {
    // A copy (`Uint8Array`'s slice, not Buffer's view): `buf` is pg's receive buffer, reused once this returns.
    if (this.forThread) this.spareBytes.push([j, Uint8Array.prototype.slice.call(buf, start, end)]);
    else this.spare.push([j, copyLineCells(buf, start, end, this.n)]);
    this.lastGiven = true;
  }
}

/** COPY's NULL, `\N` (a text cell of those two characters is written `\\N`). */
function isNullCell(buf: Buffer, at: number, stop: number): boolean {
  return stop - at === 2 && buf[at] === BACKSLASH && buf[at + 1] === 78;
}

/** A COPY row's text cells (`\N` → null), as `pg` reads a row of `n` columns. */
export function copyLineCells(buf: Buffer, start: number, end: number, n: number): (string | null)[] {
  const cells: (string | null)[] = [];
  let at = start;
  for (let i = 0; i < n; i++) {
    let stop = at;
    while (stop < end && buf[stop] !== TAB) stop++;
    cells.push(isNullCell(buf, at, stop) ? null : copyCellText(buf, at, stop));
    at = stop + 1;
  }
  return cells;
}

/** `YYYY-MM-DD HH:MM:SS[.f…]` in `buf[at, end)`, as `isPlainDateTime` (rowJson.ts) checks text. */
function plainDateTime(buf: Buffer, at: number, end: number): boolean {
  const n = end - at;
  if (n < 19 || buf[at + 4] !== 45 || buf[at + 7] !== 45 || buf[at + 10] !== 32 || buf[at + 13] !== 58 || buf[at + 16] !== 58) return false;
  for (const i of DATE_TIME_DIGITS) {
    const c = buf[at + i]!;
    if (c < 48 || c > 57) return false;
  }
  if (n === 19) return true;
  if (n === 20 || buf[at + 19] !== 46) return false;
  for (let i = at + 20; i < end; i++) {
    const c = buf[i]!;
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * Whether a float's text is a plain decimal (`-12.5`, `0.001`) of at most 15 significant digits, no
 * trailing fractional zero, not below 1e-6 and not negative zero. Such a decimal is the shortest text
 * of the double nearest to it (15 digits always survive a double), which is what `JSON.stringify` of
 * the decoder's number prints, in the same fixed notation. Anything else (NaN, ±Infinity, exponents,
 * 16 or 17 digits) goes through the decoder.
 */
function plainDecimal(buf: Buffer, at: number, stop: number): boolean {
  let k = at;
  const negative = buf[k] === 45;
  if (negative) k++;
  if (k === stop || (buf[k] === 48 && k + 1 < stop && buf[k + 1] !== 46)) return false;
  let significant = 0;
  let leadingZeros = 0;
  let point = -1;
  for (; k < stop; k++) {
    const c = buf[k]!;
    if (c >= 48 && c <= 57) {
      if (significant > 0 || c !== 48) significant++;
      else if (point >= 0) leadingZeros++;
    } else if (c === 46 && point < 0 && k > at && buf[k - 1] !== 45) {
      point = k;
    } else {
      return false;
    }
  }
  const last = buf[stop - 1]!;
  if (last === 46 || (point >= 0 && last === 48)) return false;
  if (significant > 15 || (negative && significant === 0)) return false;
  return significant === 0 || leadingZeros < 6;
}

const HEX = new Int16Array(256).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[97 + i] = HEX[65 + i] = 10 + i;

/** The byte two hex digits at `buf[k]` make, or −1. */
function hexByte(buf: Buffer, k: number): number {
  const h = HEX[buf[k]!]!;
  const l = HEX[buf[k + 1]!]!;
  return h < 0 || l < 0 ? -1 : (h << 4) | l;
}

const BASE64 = Buffer.from('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');

/** Whether `buf[from, to)` is an array index's text (`isArrayIndex`; a key that does not start with a digit makes no string). */
function arrayIndexBytes(buf: Buffer, from: number, to: number): boolean {
  const c = buf[from]!;
  if (to <= from || c < 48 || c > 57) return false;
  return isArrayIndex(buf.toString('latin1', from, to), 0, to - from);
}

const ESCAPES: Record<number, number> = { 98: 8, 102: 12, 110: 10, 114: 13, 116: 9, 118: 11 };

/** A cell's text: COPY's escapes undone, then UTF-8 decoded as `pg` decodes a DataRow's cell (invalid bytes → U+FFFD). */
export function copyCellText(buf: Buffer, at: number, stop: number): string {
  let k = at;
  while (k < stop && buf[k] !== BACKSLASH) k++;
  if (k === stop) return buf.toString('utf8', at, stop);
  const bytes = Buffer.allocUnsafe(stop - at);
  let p = 0;
  for (k = at; k < stop; k++) {
    const c = buf[k]!;
    if (c !== BACKSLASH || k + 1 === stop) {
      bytes[p++] = c;
      continue;
    }
    const e = buf[++k]!;
    bytes[p++] = ESCAPES[e] ?? e;
  }
  return bytes.toString('utf8', 0, p);
}

/**
 * Runs `COPY (<select>) TO STDOUT` (`text`; no parameters: COPY takes none) on `client`, through
 * `writer`, which must have `begin`-un the chunk. Rejects with the server's error; the client stays usable.
 */
export function copyChunk(client: Client, text: string, writer: CopyRowWriter): Promise<CopyChunk> {
  return new Promise<CopyChunk>((resolve, reject) => {
    let failed: Error | null = null;
    let settled = false;
    const settle = (err: Error | null): void => {
      if (settled) return;
      settled = true;
      if (err !== null) reject(err);
      else {
        try {
          resolve(writer.finish());
        } catch (e) {
          reject(e instanceof Error ? e : new Error(String(e)));
        }
      }
    };
    // A `pg` submittable: the client hands it the connection when its turn comes, and its messages.
    const query = {
      submit(connection: { query: (text: string) => void }): void {
        connection.query(text);
      },
      handleCopyData(msg: { chunk: Buffer }): void {
        if (failed !== null) return;
        try {
          writer.data(msg.chunk);
        } catch (e) {
          // The rest of COPY's output still arrives; the error is given once it has.
          failed = e instanceof Error ? e : new Error(String(e));
        }
      },
      handleCommandComplete(): void {},
      handleEmptyQuery(): void {},
      handleRowDescription(): void {
        failed ??= new Error('COPY returned rows, not COPY data');
      },
      handleDataRow(): void {},
      handleReadyForQuery(): void {
        settle(failed);
      },
      handleError(err: Error): void {
        settle(err);
      },
    };
    // A submittable is not a promise: `query` gives the submittable back, and it settles this one.
    void client.query(query as unknown as Parameters<Client['query']>[0]);
  });
}
