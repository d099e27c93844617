/**
 * A row in PostgreSQL's text form (the snapshot's `rowMode: 'array'` rows) → the JSON of its row image
 * and of its key, byte-identical to `JSON.stringify` of the row the decoders make (`TypeRegistry.decoder`,
 * one property per column in column order) and of `keyFrom`'s key, without making the row object.
 *
 * Why: on the snapshot's hot path the row object, and for jsonb the parse into values (with the
 * exact-number reviver whenever a number such as `45.7000000000000000` does not survive a double) and
 * their serialisation back, were most of the reader's own CPU per row (docs/reader.md "Snapshot benchmark").
 * Each column gets a fragment writer: the decoder's value through `JSON.stringify`, except where the
 * text already is that JSON (int2/int4/oid and int8 up to 15 digits, whose output is canonical digits; bool), or is
 * that JSON's inside by position (numeric; timestamp and timestamptz in the session's UTC, re-cut), and jsonb, whose
 * output (`jsonb_out`) is canonical JSON with `", "` and `": "` separators: its numbers come back
 * verbatim through the decoder either way (as doubles that print the same, or `JSON.rawJSON`), its
 * strings are escaped as `JSON.stringify` escapes them, its keys are unique; so its JSON is the text
 * without the blanks between tokens, unless an object key is an array index (V8 enumerates those
 * first, in numeric order, so the parsed object prints its keys in another order: the decoder's path).
 */
import type { Decoder } from '../../shared/events/pgTypes.js';
import {
  arrayElementOf,
  decodeBool,
  decodeBytea,
  decodeFloat,
  decodeDate,
  decodeInt,
  decodeInt8,
  decodeInterval,
  decodeJson,
  decodeText,
  decodeTime,
  decodeTimestamp,
  decodeTimestamptz,
} from '../../shared/events/pgTypes.js';

/** A cell's text → its JSON (undefined: the property is left out, as `JSON.stringify` leaves out an undefined value). */
export type CellJson = (text: string) => string | undefined;

/** A column as the writer needs it: its decoder, and its type's name (`TypeRegistry.baseTypeName`: a domain has its base type's). */
export interface RowJsonColumn {
  name: string;
  decoder: Decoder;
  baseType: string;
}

/**
 * How a column's text becomes its JSON: the shortcuts below by type, else its decoder's value through
 * `JSON.stringify`. One classification for both writers of a cell: `cellJson` (text) and the COPY
 * transcoder (`copyRows.ts`, the cell's bytes).
 */
export const CELL_INT = 0;
export const CELL_INT8 = 1;
export const CELL_BOOL = 2;
export const CELL_JSONB = 3;
export const CELL_TIMESTAMPTZ = 4;
export const CELL_TIMESTAMP = 5;
/** The text quoted is the JSON: nothing in it is escaped (numeric; `PLAIN_TEXT_TYPES`). */
export const CELL_QUOTED = 6;
/** The decoder is the identity: the JSON is `JSON.stringify` of the text. */
export const CELL_STRING = 7;
/** float4/float8: a plain decimal of at most 15 significant digits is the JSON the decoder's number prints (the COPY transcoder's; text goes through the decoder). */
export const CELL_FLOAT = 8;
/** bytea in hex output: base64 of the bytes (the COPY transcoder's; text goes through the decoder). */
export const CELL_BYTEA = 9;
/** int2[]/int4[]/oid[] with `,` between elements: braces become brackets (the COPY transcoder's; text goes through the decoder). */
export const CELL_INT_ARRAY = 10;
export const CELL_OTHER = 11;

/**
 * Only jsonb's text is canonical: json (same decoder) keeps its input as written (blanks, duplicate
 * keys, escapes), so it goes through the decoder.
 */
export function cellKind(column: RowJsonColumn): number {
  const { decoder } = column;
  if (decoder === decodeInt) return CELL_INT;
  if (decoder === decodeInt8) return CELL_INT8;
  if (decoder === decodeBool) return CELL_BOOL;
  if (decoder === decodeJson && column.baseType === 'jsonb') return CELL_JSONB;
  if (decoder === decodeTimestamptz) return CELL_TIMESTAMPTZ;
  if (decoder === decodeTimestamp) return CELL_TIMESTAMP;
  if (decoder === decodeFloat) return CELL_FLOAT;
  if (decoder === decodeBytea) return CELL_BYTEA;
  const array = arrayElementOf(decoder);
  if (array !== undefined && array.element === decodeInt && array.delimiter === ',') return CELL_INT_ARRAY;
  // numeric's output is digits, sign, point, NaN or ±Infinity: nothing JSON escapes.
  if (decoder === decodeText && column.baseType === 'numeric') return CELL_QUOTED;
  // Their output (DateStyle ISO, IntervalStyle iso_8601, as the session sets them) is digits,
  // letters, `-`, `:`, `.`, `/`, `+` and blanks: nothing JSON escapes, so the string's JSON is the text
  // quoted (0.04 µs a cell less than JSON.stringify; a float's text checked the same way was slower than its decoder).
  if (PLAIN_TEXT_TYPES.has(column.baseType) && IDENTITY_DECODERS.has(decoder)) return CELL_QUOTED;
  if (IDENTITY_DECODERS.has(decoder)) return CELL_STRING;
  return CELL_OTHER;
}

/** The JSON writer of a column's text (`cellKind`). */
export function cellJson(column: RowJsonColumn): CellJson {
  const { decoder } = column;
  switch (cellKind(column)) {
    case CELL_INT:
      return (t) => t;
    // int8's output is canonical digits; up to 15 characters it is a safe integer, which the decoder
    // turns into a number that prints as the same digits (longer ones may be strings: the decoder's path).
    case CELL_INT8:
      return (t) => (t.length <= 15 ? t : JSON.stringify(decoder(t)));
    case CELL_BOOL:
      return (t) => (decoder(t) ? 'true' : 'false');
    case CELL_JSONB:
      return (t) => compactJsonb(t) ?? JSON.stringify(decoder(t));
    case CELL_TIMESTAMPTZ:
      return (t) => utcTimestamptzJson(t) ?? JSON.stringify(decoder(t));
    case CELL_TIMESTAMP:
      return (t) => timestampJson(t) ?? JSON.stringify(decoder(t));
    case CELL_QUOTED:
      return (t) => `"${t}"`;
    case CELL_STRING:
      return (t) => JSON.stringify(t);
    default:
      return (t) => JSON.stringify(decoder(t));
  }
}

const PLAIN_TEXT_TYPES: ReadonlySet<string> = new Set(['date', 'time', 'timetz', 'interval', 'uuid', 'inet', 'cidr', 'macaddr', 'macaddr8']);
const IDENTITY_DECODERS: ReadonlySet<Decoder> = new Set([decodeText, decodeDate, decodeTime, decodeInterval]);

const isDigit = (t: string, i: number): boolean => {
  const c = t.charCodeAt(i);
  return c >= 48 && c <= 57;
};

/** The digit positions of `YYYY-MM-DD HH:MM:SS`. */
export const DATE_TIME_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18];

/**
 * Whether `t` is `YYYY-MM-DD HH:MM:SS[.f…]` up to `end` (exclusive): a four-digit year, AD, as the
 * decoders' patterns read it. Checked by position: the regular expressions behind the decoders were
 * the larger part of a timestamp cell's cost.
 */
function isPlainDateTime(t: string, end: number): boolean {
  if (end < 19 || t.charCodeAt(4) !== 45 || t.charCodeAt(7) !== 45 || t.charCodeAt(10) !== 32 || t.charCodeAt(13) !== 58 || t.charCodeAt(16) !== 58)
    return false;
  for (const i of DATE_TIME_DIGITS) if (!isDigit(t, i)) return false;
  if (end === 19) return true;
  if (end === 20 || t.charCodeAt(19) !== 46) return false;
  for (let i = 20; i < end; i++) if (!isDigit(t, i)) return false;
  return true;
}

/**
 * timestamptz in the session's UTC (`2026-01-01 10:00:00.5+00`) → the decoder's JSON
 * (`"2026-01-01T10:00:00.5Z"`) by slicing; null for anything else (another offset, infinity, BC, a
 * five-digit year): the decoder's path.
 */
export function utcTimestamptzJson(t: string): string | null {
  const n = t.length;
  if (t.charCodeAt(n - 3) !== 43 || t.charCodeAt(n - 2) !== 48 || t.charCodeAt(n - 1) !== 48 || !isPlainDateTime(t, n - 3)) return null;
  return `"${t.slice(0, 10)}T${t.slice(11, n - 3)}Z"`;
}

/** timestamp (`2026-01-01 10:00:00.5`) → the decoder's JSON (`"2026-01-01T10:00:00.5"`); null: the decoder's path. */
export function timestampJson(t: string): string | null {
  if (!isPlainDateTime(t, t.length)) return null;
  return `"${t.slice(0, 10)}T${t.slice(11)}"`;
}

/** The length of an array-index key's text is at most 10 digits (up to 2^32 − 2). */
export function isArrayIndex(t: string, from: number, to: number): boolean {
  const n = to - from;
  if (n < 1 || n > 10) return false;
  for (let i = from; i < to; i++) {
    const c = t.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  if (n > 1 && t.charCodeAt(from) === 48) return false;
  return Number(t.slice(from, to)) <= 4294967294;
}

/**
 * jsonb text → the same JSON without blanks between tokens, or null when an object key is an array
 * index (see the module comment).
 */
export function compactJsonb(t: string): string | null {
  let out = '';
  let start = 0;
  const n = t.length;
  for (let i = 0; i < n; i++) {
    const c = t.charCodeAt(i);
    if (c === 34) {
      const open = i;
      for (i++; i < n; i++) {
        const d = t.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
      // A key: the string is followed by `:` (jsonb_out writes `": "`).
      if (t.charCodeAt(i + 1) === 58 && isArrayIndex(t, open + 1, i)) return null;
    } else if (c === 32 || c === 10 || c === 13 || c === 9) {
      if (i > start) out += t.slice(start, i);
      start = i + 1;
    }
  }
  return start === 0 ? t : out + t.slice(start);
}

export interface RowJsonEncoder {
  /** The row image's JSON. */
  row(cells: readonly (string | null | undefined)[]): string;
  /** The key's JSON (key columns in key order), or null when a key cell is NULL (the caller's `keyFrom` names the problem). */
  key(cells: readonly (string | null | undefined)[]): string | null;
  /** The key is the whole row in column order: its JSON is the row's. */
  keyIsRow: boolean;
}

/**
 * The encoder of rows with these columns (`cells[i]` is column `columns[i]`'s text, null for NULL), or
 * null when a column name is an array index (a row object would enumerate it first) or a key column is
 * not among the columns: use the row object (`keyFrom` names that problem).
 * `keyColumns`: the key's columns, in key order; `wholeRowKey`: the key is the whole row, NULLs included.
 */
export function rowJsonEncoder(columns: readonly RowJsonColumn[], keyColumns: readonly string[], wholeRowKey: boolean): RowJsonEncoder | null {
  const names = columns.map((c) => c.name);
  if (names.some((n) => isArrayIndex(n, 0, n.length))) return null;
  const cells = columns.map(cellJson);
  const labels = names.map((n) => `${JSON.stringify(n)}:`);
  const encode = (raw: readonly (string | null | undefined)[], order: readonly number[]): string => {
    let out = '{';
    for (const i of order) {
      const v = raw[i];
      const json = v === null || v === undefined ? 'null' : cells[i]!(v);
      if (json === undefined) continue;
      out += out.length === 1 ? labels[i]! + json : ',' + labels[i]! + json;
    }
    return out + '}';
  };
  const all = names.map((_, i) => i);
  const keyIndex = keyColumns.map((k) => names.indexOf(k));
  if (keyIndex.some((i) => i < 0)) return null;
  return {
    keyIsRow: wholeRowKey && keyIndex.length === all.length && keyIndex.every((k, i) => k === i),
    row: (raw) => encode(raw, all),
    key: (raw) => {
      if (!wholeRowKey) for (const i of keyIndex) if (raw[i] === null || raw[i] === undefined) return null;
      return encode(raw, keyIndex);
    },
  };
}
