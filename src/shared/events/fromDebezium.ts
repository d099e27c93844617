/**
 * Debezium's own change events (an existing Debezium PostgreSQL connector writing through the
 * JsonConverter, or the reader with CDC_EVENT_FORMAT=debezium) → the native `ChangeEvent` every sink
 * reads, so the sinks can replace Kafka Connect sinks behind an existing Debezium. `decodeBody` calls
 * it for a value without the native `key` field (docs/sinks.md "Debezium's events").
 *
 * - With the Connect schema (`schemas.enable=true`), each column is turned back into the native value
 *   (docs/reader.md "Type mapping") by its Connect type and schema name: day counts into dates, epoch
 *   integers into times and timestamps, base64 decimals into decimal text with the schema's `scale`,
 *   Json strings into their JSON value (lossless), and `source.types` is filled from the schema, so
 *   the Elasticsearch mappings and ADX column types are those of the native events.
 * - Without it, nothing in the event tells a date's day count from an integer column, so values are
 *   taken as they are; only the unavailable-value placeholder is recognised.
 * - The unavailable-value placeholder (an unchanged TOAST value Debezium was not sent) is removed
 *   from `after` and listed in `source.unchanged_toast`, as the reader does.
 * - The key: the Kafka record key when the host hands it over (the worker does; Event Hubs' AMQP side,
 *   and so the Functions trigger, does not: PLATFORM-FACTS), else the table's `keys` in CDC_ROUTES,
 *   else the record is dead-lettered (`NO_KEY`) naming both.
 *
 * What Debezium's events cannot carry and the sinks therefore write differently is listed in
 * docs/sinks.md and in test/shared/events/fromDebezium.test.ts.
 */
import { PermanentRecordError } from '../core/errors.js';
import { civilFromDays } from './civilDate.js';
import { tableId, type RowImage } from './changeEvent.js';
import { parseJsonLossless } from './exactJson.js';

/** Debezium's default placeholder for an unchanged out-of-line (TOAST) value it was not sent. */
export const UNAVAILABLE_VALUE = '__debezium_unavailable_value';
/** The date of infinity/-infinity as pgjdbc turns them into days (recorded, not derived). */
export const DATE_INFINITY_DAYS = -2147472692;
export const DATE_MINUS_INFINITY_DAYS = -2147472691;
/** pgjdbc's timestamp infinity constants, used by Debezium as epoch microseconds. */
export const TS_INFINITY_MICROS = 9223372036825200000n;
export const TS_MINUS_INFINITY_MICROS = -9223372036832400000n;

export interface DebeziumInputOptions {
  /** Debezium's `unavailable.value.placeholder` (CDC_DEBEZIUM_UNAVAILABLE_VALUE_PLACEHOLDER). */
  unavailableValuePlaceholder: string;
  /** The table's key columns (CDC_ROUTES `keys`), for records whose record key the host does not give. */
  keyColumns?: (schema: string, table: string) => readonly string[] | undefined;
}

export const DEBEZIUM_INPUT_DEFAULTS: DebeziumInputOptions = { unavailableValuePlaceholder: UNAVAILABLE_VALUE };

/** A Connect schema (the part of it this needs). */
interface ConnectSchema {
  type?: string;
  name?: string;
  field?: string;
  parameters?: Record<string, string>;
  fields?: ConnectSchema[];
  items?: ConnectSchema;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/**
 * A Debezium value: an envelope (`op`, `source`) without the native event's `key` field, which the
 * reader always writes (null for a truncate).
 */
export function isDebeziumValue(value: Record<string, unknown>): boolean {
  return !('key' in value) && typeof value.op === 'string' && isObject(value.source);
}

const isRawJSON = (v: unknown): boolean => (JSON as unknown as { isRawJSON: (v: unknown) => boolean }).isRawJSON(v);

/** An integer JSON value as a BigInt (a lossless parse keeps big ones as `JSON.rawJSON`). */
function bigIntOf(value: unknown): bigint | undefined {
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'bigint') return value;
  if (isRawJSON(value)) {
    const text = JSON.stringify(value);
    return /^-?\d+$/.test(text) ? BigInt(text) : undefined;
  }
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  return undefined;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** The native int8: a number while exact, else its decimal text. */
const nativeInteger = (n: bigint): unknown => (n > MAX_SAFE || n < -MAX_SAFE ? n.toString() : Number(n));

/** Two's complement big-endian bytes (Java BigInteger.toByteArray) → BigInt. */
function fromTwosComplement(bytes: Buffer): bigint {
  if (bytes.length === 0) return 0n;
  const n = BigInt(`0x${bytes.toString('hex')}`);
  return bytes[0]! & 0x80 ? n - (1n << BigInt(bytes.length * 8)) : n;
}

/** Unscaled integer and scale → PostgreSQL's numeric text (`-150`, 2 → `-1.50`). */
function decimalText(unscaled: bigint, scale: number): string {
  const neg = unscaled < 0n;
  let digits = (neg ? -unscaled : unscaled).toString();
  if (scale <= 0) return `${neg ? '-' : ''}${digits}${'0'.repeat(-scale)}`;
  digits = digits.padStart(scale + 1, '0');
  return `${neg ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

const pad = (n: number | bigint, w = 2): string => String(n).padStart(w, '0');
const floorDiv = (a: bigint, b: bigint): bigint => (a % b !== 0n && a < 0n !== b < 0n ? a / b - 1n : a / b);
/** A fraction of a second from nanoseconds as PostgreSQL prints it: trailing zeros dropped. */
const fraction = (nanos: bigint): string => (nanos === 0n ? '' : `.${pad(nanos, 9).replace(/0+$/, '')}`);

/** Days since the epoch → PostgreSQL's date text (`2024-05-01`, `0044-03-15 BC`). */
function dateText(days: number): string {
  const [y, m, d] = civilFromDays(days);
  return y > 0 ? `${pad(y, 4)}-${pad(m)}-${pad(d)}` : `${pad(1 - y, 4)}-${pad(m)}-${pad(d)} BC`;
}

function timeOfDay(nanos: bigint): string {
  const secs = nanos / 1_000_000_000n;
  return `${pad(secs / 3600n)}:${pad((secs / 60n) % 60n)}:${pad(secs % 60n)}${fraction(nanos % 1_000_000_000n)}`;
}

/** Epoch nanoseconds → the native timestamp (`2024-05-01T10:11:12.123456`; BC as PostgreSQL prints it). */
function timestampText(nanos: bigint): string {
  const day = 86_400_000_000_000n;
  const days = floorDiv(nanos, day);
  const [y] = civilFromDays(Number(days));
  const date = dateText(Number(days));
  const time = timeOfDay(nanos - days * day);
  // before year 1 as the reader writes PostgreSQL's `0044-03-15 10:00:00 BC` (`T` for the space)
  return y > 0 ? `${date}T${time}` : `${date.slice(0, -3)}T${time} BC`;
}

/**
 * What `time.precision.mode=isostring` makes of infinity/-infinity (pgjdbc's constants printed by
 * java.time; recorded).
 */
const ISO_INFINITIES: Record<string, string> = {
  '-5877611-06-21Z': 'infinity',
  '-5877611-06-22Z': '-infinity',
  '+294247-01-10T04:00:25.2Z': 'infinity',
  '-290308-12-21T19:59:27.6Z': '-infinity',
};

/** An isostring date, time or timestamp (`…Z`, java.time's `+` before years beyond 9999) → the native form. */
function isoText(text: string): string {
  const infinity = ISO_INFINITIES[text];
  if (infinity !== undefined) return infinity;
  const bare = text.endsWith('Z') ? text.slice(0, -1) : text;
  return bare.startsWith('+') ? bare.slice(1) : bare;
}

/** ZonedTimestamp (`…T…[.ffffff]Z`, always six digits) → the native timestamptz (`…[.f]Z`, trimmed). */
function zonedTimestamp(text: string): string {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(text);
  if (!m) return text; // infinity, -infinity
  const frac = (m[2] ?? '').replace(/0+$/, '');
  return `${m[1]}${frac === '' ? '' : `.${frac}`}Z`;
}

/** ZonedTime (`08:11:12.5Z`, normalised to UTC by Debezium) → timetz text at offset +00. */
function zonedTime(text: string): string {
  return text.endsWith('Z') ? `${text.slice(0, -1)}+00` : text;
}

/** Debezium's interval string (`P1Y2M3DT4H5M6.789S`, every field written) → PostgreSQL's iso_8601 form (zero fields left out). */
function intervalText(text: string): string {
  const m = /^P(-?\d+)Y(-?\d+)M(-?\d+)DT(-?\d+)H(-?\d+)M(-?[\d.]+)S$/.exec(text);
  if (!m) return text;
  const [, y, mo, d, h, mi, s] = m as unknown as [string, string, string, string, string, string, string];
  const part = (v: string, unit: string) => (Number(v) === 0 ? '' : `${v}${unit}`);
  const date = part(y, 'Y') + part(mo, 'M') + part(d, 'D');
  const time = part(h, 'H') + part(mi, 'M') + part(s, 'S');
  return date === '' && time === '' ? 'PT0S' : `P${date}${time === '' ? '' : `T${time}`}`;
}

/** MicroDuration (approximate: a month is 30.4375 days) → an ISO-8601 duration of days and time. */
function microDuration(micros: bigint): string {
  if (micros === 0n) return 'PT0S';
  const neg = micros < 0n;
  let rest = neg ? -micros : micros;
  const days = rest / 86_400_000_000n;
  rest -= days * 86_400_000_000n;
  const sign = neg ? '-' : '';
  const hours = rest / 3_600_000_000n;
  const minutes = (rest / 60_000_000n) % 60n;
  const secNanos = (rest % 60_000_000n) * 1000n;
  const secs = secNanos === 0n ? '' : `${sign}${secNanos / 1_000_000_000n}${fraction(secNanos % 1_000_000_000n)}S`;
  const time = (hours === 0n ? '' : `${sign}${hours}H`) + (minutes === 0n ? '' : `${sign}${minutes}M`) + secs;
  return `P${days === 0n ? '' : `${sign}${days}D`}${time === '' ? '' : `T${time}`}`;
}

/** The PostgreSQL type name `source.types` gives a column of this Connect schema, or undefined when the reader lists none. */
function pgTypeOf(s: ConnectSchema): string | undefined {
  switch (s.name) {
    case 'io.debezium.time.Date':
    case 'io.debezium.time.IsoDate':
      return 'date';
    case 'io.debezium.time.Time':
    case 'io.debezium.time.MicroTime':
    case 'io.debezium.time.NanoTime':
    case 'io.debezium.time.IsoTime':
      return 'time';
    case 'io.debezium.time.ZonedTime':
      return 'timetz';
    case 'io.debezium.time.Timestamp':
    case 'io.debezium.time.MicroTimestamp':
    case 'io.debezium.time.NanoTimestamp':
    case 'io.debezium.time.IsoTimestamp':
      return 'timestamp';
    case 'io.debezium.time.ZonedTimestamp':
      return 'timestamptz';
    case 'io.debezium.time.MicroDuration':
    case 'io.debezium.time.Interval':
      return 'interval';
    case 'org.apache.kafka.connect.data.Decimal':
      // money is a Decimal of scale 2 without a precision; numeric(p,s) always has one
      return s.parameters?.['connect.decimal.precision'] === undefined && s.parameters?.scale === '2' ? 'money' : 'numeric';
    case 'io.debezium.data.VariableScaleDecimal':
      return 'numeric';
    case 'io.debezium.data.Json':
      return 'jsonb';
    case 'io.debezium.data.Uuid':
      return 'uuid';
    case 'io.debezium.data.Enum':
      return undefined;
    default:
      break;
  }
  switch (s.type) {
    case 'int64':
      return 'int8';
    case 'float':
      return 'float4';
    case 'double':
      return 'float8';
    case 'bytes':
      return 'bytea';
    case 'array': {
      const element = s.items ? pgTypeOf(s.items) : undefined;
      const base = element ?? (s.items?.type === 'int16' ? 'int2' : s.items?.type === 'int32' ? 'int4' : s.items?.type === 'boolean' ? 'bool' : 'text');
      return `${base}[]`;
    }
    default:
      return undefined;
  }
}

/** One column value (non-null) by its Connect schema → the native value. */
function nativeValue(s: ConnectSchema, value: unknown): unknown {
  if (s.type === 'array') return Array.isArray(value) && s.items ? value.map((v: unknown) => (v === null ? null : nativeValue(s.items!, v))) : value;
  const n = bigIntOf(value);
  switch (s.name) {
    case 'io.debezium.time.Date':
      if (value === DATE_INFINITY_DAYS) return 'infinity';
      if (value === DATE_MINUS_INFINITY_DAYS) return '-infinity';
      return typeof value === 'number' ? dateText(value) : value;
    case 'io.debezium.time.Time':
      return n === undefined ? value : timeOfDay(n * 1_000_000n);
    case 'io.debezium.time.MicroTime':
      return n === undefined ? value : timeOfDay(n * 1000n);
    case 'io.debezium.time.NanoTime':
      return n === undefined ? value : timeOfDay(n);
    case 'io.debezium.time.Timestamp':
    case 'io.debezium.time.MicroTimestamp':
    case 'io.debezium.time.NanoTimestamp': {
      if (n === undefined) return value;
      if (n === TS_INFINITY_MICROS) return 'infinity';
      if (n === TS_MINUS_INFINITY_MICROS) return '-infinity';
      const factor = s.name === 'io.debezium.time.Timestamp' ? 1_000_000n : s.name === 'io.debezium.time.MicroTimestamp' ? 1000n : 1n;
      return timestampText(n * factor);
    }
    case 'io.debezium.time.IsoDate':
    case 'io.debezium.time.IsoTime':
    case 'io.debezium.time.IsoTimestamp':
      return typeof value === 'string' ? isoText(value) : value;
    case 'io.debezium.time.ZonedTimestamp':
      return typeof value === 'string' ? zonedTimestamp(value) : value;
    case 'io.debezium.time.ZonedTime':
      return typeof value === 'string' ? zonedTime(value) : value;
    case 'io.debezium.time.Interval':
      return typeof value === 'string' ? intervalText(value) : value;
    case 'io.debezium.time.MicroDuration':
      return n === undefined ? value : microDuration(n);
    case 'org.apache.kafka.connect.data.Decimal': {
      if (typeof value !== 'string') return value;
      const scale = Number(s.parameters?.scale ?? 0);
      return decimalText(fromTwosComplement(Buffer.from(value, 'base64')), scale);
    }
    case 'io.debezium.data.VariableScaleDecimal':
      if (!isObject(value) || typeof value.scale !== 'number' || typeof value.value !== 'string') return value;
      return decimalText(fromTwosComplement(Buffer.from(value.value, 'base64')), value.scale);
    case 'io.debezium.data.Json':
      return typeof value === 'string' ? parseJsonLossless(value) : value;
    default:
      break;
  }
  if (s.type === 'int64' && n !== undefined) return nativeInteger(n);
  // decimal.handling.mode=string writes NaN as NAN
  if (s.type === 'string' && value === 'NAN') return 'NaN';
  return value;
}

/**
 * Numbers the lossless parse kept as text: Java writes doubles its own way (`-1.0E-10`, the reader
 * JavaScript's `-1e-10`), and a fraction or exponent is a double in Debezium's output (decimals are
 * base64 or strings), so it becomes the number; an integer beyond 2^53 becomes its decimal text, as
 * the native int8 (a JSON number there would be rounded by every JavaScript reader, Elasticsearch's
 * `_source` included).
 */
function asDouble(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(asDouble);
  if (!isRawJSON(value)) return value;
  const text = JSON.stringify(value);
  return /^-?\d+$/.test(text) ? text : Number(text);
}

/** The columns of a row schema (`before`/`after` of the envelope schema), by name. */
function rowSchemaOf(schema: unknown): Map<string, ConnectSchema> | undefined {
  if (!isObject(schema) || !Array.isArray(schema.fields)) return undefined;
  const fields = schema.fields as ConnectSchema[];
  const row = fields.find((f) => f.field === 'after' && Array.isArray(f.fields)) ?? fields.find((f) => f.field === 'before' && Array.isArray(f.fields));
  if (row?.fields === undefined) return undefined;
  return new Map(row.fields.flatMap((f) => (typeof f.field === 'string' ? [[f.field, f] as const] : [])));
}

interface ConvertedRow {
  row: RowImage;
  unavailable: string[];
}

function convertRow(image: RowImage, columns: Map<string, ConnectSchema> | undefined, placeholder: string): ConvertedRow {
  const row: RowImage = {};
  const unavailable: string[] = [];
  const placeholderBytes = Buffer.from(placeholder, 'utf8').toString('base64');
  for (const [name, value] of Object.entries(image)) {
    const s = columns?.get(name);
    // bytea columns carry the placeholder's bytes (base64 in JSON)
    if (value === placeholder || (s?.type === 'bytes' && s.name === undefined && value === placeholderBytes)) {
      unavailable.push(name);
      continue;
    }
    const plain = asDouble(value);
    row[name] = plain === null || plain === undefined || s === undefined ? plain : nativeValue(s, plain);
  }
  return { row, unavailable };
}

/** The record key: `{"id":1}`, or `{schema, payload}` with `key.converter.schemas.enable=true`; undefined when absent or not an object. */
function recordKeyOf(key: unknown): { payload: RowImage; schema?: Map<string, ConnectSchema> } | undefined {
  let value = key;
  if (value instanceof Uint8Array) value = Buffer.from(value).toString('utf8');
  if (typeof value === 'string') {
    if (value.trim() === '') return undefined;
    try {
      value = parseJsonLossless(value);
    } catch {
      return undefined;
    }
  }
  if (!isObject(value)) return undefined;
  if ('schema' in value && 'payload' in value) {
    if (!isObject(value.payload)) return undefined;
    const fields = isObject(value.schema) && Array.isArray(value.schema.fields) ? (value.schema.fields as ConnectSchema[]) : [];
    return { payload: value.payload, schema: new Map(fields.flatMap((f) => (typeof f.field === 'string' ? [[f.field, f] as const] : []))) };
  }
  return { payload: value };
}

/**
 * A Debezium value (the payload, with its Connect schema when it came wrapped) → the native event.
 * Fields are checked afterwards by `decodeBody`'s envelope check, like any other event.
 */
export function fromDebezium(value: Record<string, unknown>, schema: unknown, recordKey: unknown, options: DebeziumInputOptions): Record<string, unknown> {
  const source = { ...(value.source as Record<string, unknown>) };
  const op = value.op;
  if (op === 'm' || op === 't') return { ...value, source, key: null };
  // A pointer to the full event in a Blob (the reader's claim check): the full event is decoded once fetched.
  if (isObject(value.deadletter)) return { ...value, source, key: null };
  const columns = rowSchemaOf(schema);
  const placeholder = options.unavailableValuePlaceholder;
  const before = isObject(value.before) ? convertRow(value.before, columns, placeholder) : undefined;
  const after = isObject(value.after) ? convertRow(value.after, columns, placeholder) : undefined;
  const table = typeof source.schema === 'string' && typeof source.table === 'string' ? { schema: source.schema, table: source.table } : undefined;

  let key: RowImage | undefined;
  const fromRecord = recordKeyOf(recordKey);
  if (fromRecord !== undefined) {
    key = convertRow(fromRecord.payload, fromRecord.schema ?? columns, placeholder).row;
  } else {
    const names = table ? options.keyColumns?.(table.schema, table.table) : undefined;
    const image = after?.row ?? before?.row;
    if (names !== undefined && names.length > 0 && image !== undefined) {
      const missing = names.filter((n) => !(n in image));
      if (missing.length > 0) {
        throw new PermanentRecordError(
          'NO_KEY',
          `Debezium event for ${tableId(table!)} lacks the key column(s) ${missing.join(', ')} that CDC_ROUTES["${tableId(table!)}"].keys names`,
        );
      }
      key = Object.fromEntries(names.map((n) => [n, image[n]]));
    }
  }
  if (key === undefined) {
    const where = table ? `CDC_ROUTES["${tableId(table)}"].keys` : 'CDC_ROUTES keys';
    throw new PermanentRecordError(
      'NO_KEY',
      `Debezium event for ${table ? tableId(table) : 'an unnamed table'} without a record key (the Event Hubs trigger does not pass Kafka keys on) ` +
        `and no key columns configured: set ${where} to the table's primary-key columns`,
    );
  }
  // A delete's `before` under REPLICA IDENTITY DEFAULT holds the key and every other column null:
  // the native event's key-only `before`.
  let beforeRow = before?.row ?? null;
  if (op === 'd' && beforeRow !== null && Object.entries(beforeRow).every(([c, v]) => c in key || v === null)) beforeRow = { ...key };

  if (after !== undefined && after.unavailable.length > 0) source.unchanged_toast = after.unavailable;
  if (columns !== undefined) {
    const types: Record<string, string> = {};
    for (const [name, s] of columns) {
      const type = pgTypeOf(s);
      if (type !== undefined) types[name] = type;
    }
    source.types = types;
  }
  return { ...value, before: beforeRow, after: after?.row ?? null, source, key };
}
