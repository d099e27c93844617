/**
 * Column values in Debezium's encodings (CDC_EVENT_FORMAT=debezium): what Debezium 3.6's PostgreSQL
 * connector hands the JsonConverter for each type under the named settings. Input is the reader's own
 * decoded value (pgTypes.ts) except for json/jsonb, which Debezium sends as PostgreSQL's text, so the
 * registry decodes them as text in this mode. Pure functions; the golden fixtures recorded from the
 * real connector (test/fixtures/debezium, `npm run debezium:record`) are the reference, and every odd
 * constant below is taken from them.
 */

import { civilFromDays, daysFromCivil } from '../../shared/events/civilDate.js';
import {
  DATE_INFINITY_DAYS,
  DATE_MINUS_INFINITY_DAYS,
  TS_INFINITY_MICROS,
  TS_MINUS_INFINITY_MICROS,
  UNAVAILABLE_VALUE,
} from '../../shared/events/fromDebezium.js';

export interface DebeziumSettings {
  /** `decimal.handling.mode`: `precise` (two's complement bytes, base64 in JSON) or `string`. */
  decimalHandlingMode: 'precise' | 'string';
  /** `time.precision.mode`: `adaptive` (epoch integers sized by column precision) or `isostring`. */
  timePrecisionMode: 'adaptive' | 'isostring';
  /** `interval.handling.mode`: `numeric` (approximate microseconds) or `string` (ISO-8601 per field). */
  intervalHandlingMode: 'numeric' | 'string';
  /** `binary.handling.mode`: `bytes` and `base64` both reach JSON as base64. */
  binaryHandlingMode: 'bytes' | 'base64';
  /** `tombstones.on.delete`. */
  tombstonesOnDelete: boolean;
  /** `skipped.operations`: ops not emitted (`t` by default; `none` → empty). */
  skippedOperations: ReadonlySet<string>;
  /** `unavailable.value.placeholder`: what an unchanged TOAST value the server did not send becomes. */
  unavailableValuePlaceholder: string;
  /** `value.converter.schemas.enable`: the value as `{"schema": …, "payload": …}` (debeziumSchema.ts). */
  valueSchemasEnable: boolean;
  /** `key.converter.schemas.enable`: the key likewise. */
  keySchemasEnable: boolean;
}

export const DEBEZIUM_DEFAULTS: DebeziumSettings = {
  decimalHandlingMode: 'precise',
  timePrecisionMode: 'adaptive',
  intervalHandlingMode: 'numeric',
  binaryHandlingMode: 'bytes',
  tombstonesOnDelete: true,
  skippedOperations: new Set(['t']),
  unavailableValuePlaceholder: UNAVAILABLE_VALUE,
  // Connect's JsonConverter enables schemas by default; Debezium's documentation and most
  // deployments turn them off, which is also what the reader wrote before it could write them.
  valueSchemasEnable: false,
  keySchemasEnable: false,
};

/** A column as the encoder needs it: the type name (TypeRegistry.baseTypeName) and the type modifier. */
export interface DebeziumColumn {
  name: string;
  /** `numeric`, `timestamp`, `int4[]` …; a domain has its base type's name, an enum `enum`. */
  type: string;
  /** pg_attribute.atttypmod (−1 when none). */
  typmod: number;
  /** pg_attribute.attnotnull (read with schemas enabled only: the schema's `optional`). */
  notNull?: boolean;
  /** An enum's labels in their order (with schemas enabled: the schema's `allowed`). */
  enumLabels?: readonly string[];
}

const rawJSON = (text: string): unknown => (JSON as unknown as { rawJSON: (text: string) => unknown }).rawJSON(text);

/** Java BigInteger.toByteArray(): minimal big-endian two's complement. */
function twosComplement(n: bigint): Buffer {
  let hex = (n < 0n ? -n : n).toString(16);
  if (hex.length % 2) hex = '0' + hex;
  let bytes = Buffer.from(hex, 'hex');
  if (n >= 0n) return bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  // negative: invert and add one over a width with room for the sign bit
  const width = bytes.length + 1;
  const v = (1n << BigInt(width * 8)) + n;
  hex = v.toString(16).padStart(width * 2, '0');
  bytes = Buffer.from(hex, 'hex');
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0xff && bytes[i + 1]! & 0x80) i++;
  return bytes.subarray(i);
}

/** A decimal string → its unscaled integer and scale (`-1.50` → −150n, 2). */
function unscaled(text: string): { value: bigint; scale: number } {
  const neg = text.startsWith('-');
  const digits = neg || text.startsWith('+') ? text.slice(1) : text;
  const [int = '0', frac = ''] = digits.split('.');
  const value = BigInt((int || '0') + frac);
  return { value: neg ? -value : value, scale: frac.length };
}

function decimal(text: string, s: DebeziumSettings, fixedScale: number | null): unknown {
  if (s.decimalHandlingMode === 'string') return text === 'NaN' ? 'NAN' : text;
  if (text === 'NaN' || text === 'Infinity' || text === '-Infinity') return null; // no BigDecimal for them
  const { value, scale } = unscaled(text);
  const b64 = twosComplement(value).toString('base64');
  // numeric without a declared scale: Debezium's VariableScaleDecimal carries the scale with the value
  return fixedScale === null ? { scale, value: b64 } : b64;
}

/** money's text (`-$1,234.50`, lc_monetary dependent) → its decimal digits. */
const moneyDigits = (text: string): string => text.replace(/[^0-9.-]/g, '');

const pad = (n: number | bigint, w = 2): string => String(n).padStart(w, '0');
/** java.time's year: four digits, `+` beyond 9999, `-` before year 0. */
const isoYear = (y: number): string => (y > 9999 ? `+${y}` : y < 0 ? `-${pad(-y, 4)}` : pad(y, 4));
const isoDate = (days: number): string => {
  const [y, m, d] = civilFromDays(days);
  return `${isoYear(y)}-${pad(m)}-${pad(d)}`;
};
/** Fraction of a second from nanoseconds, trailing zeros dropped (java.time's ISO formatters). */
const trimmedFraction = (nanos: bigint): string => (nanos === 0n ? '' : `.${pad(nanos, 9).replace(/0+$/, '')}`);

const LONG_MAX = (1n << 63n) - 1n;
const LONG_MIN = -(1n << 63n);

function dateDays(text: string): number {
  if (text === 'infinity') return DATE_INFINITY_DAYS;
  if (text === '-infinity') return DATE_MINUS_INFINITY_DAYS;
  const m = /^(\d{4,})-(\d\d)-(\d\d)$/.exec(text);
  if (!m) throw new Error(`unsupported date ${text}`);
  return daysFromCivil(Number(m[1]), Number(m[2]), Number(m[3]));
}

/** `HH:MM:SS[.ffffff]` → nanoseconds of the day (24:00:00 included). */
function timeNanos(text: string): bigint {
  const m = /^(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?/.exec(text);
  if (!m) throw new Error(`unsupported time ${text}`);
  return BigInt(Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3])) * 1_000_000_000n + BigInt((m[4] ?? '').padEnd(9, '0'));
}

/** A reader timestamp (`YYYY-MM-DDTHH:MM:SS[.f]`, optionally `Z`) → epoch microseconds. */
function timestampMicros(text: string): bigint {
  if (text === 'infinity') return TS_INFINITY_MICROS;
  if (text === '-infinity') return TS_MINUS_INFINITY_MICROS;
  const m = /^(\d{4,})-(\d\d)-(\d\d)T(.*?)Z?$/.exec(text);
  if (!m) throw new Error(`unsupported timestamp ${text}`);
  const days = BigInt(daysFromCivil(Number(m[1]), Number(m[2]), Number(m[3])));
  return days * 86_400_000_000n + timeNanos(m[4]!) / 1000n;
}

const floorDiv = (a: bigint, b: bigint): bigint => (a % b !== 0n && a < 0n !== b < 0n ? a / b - 1n : a / b);

/** Epoch microseconds → java.time's ISO instant (`…T…[.f]Z`, fraction trimmed). */
function isoInstant(micros: bigint): string {
  const days = floorDiv(micros, 86_400_000_000n);
  const ofDay = micros - days * 86_400_000_000n;
  return `${isoDate(Number(days))}T${isoTime(ofDay * 1000n)}Z`;
}

function isoTime(nanos: bigint): string {
  const secs = nanos / 1_000_000_000n;
  return `${pad(secs / 3600n)}:${pad((secs / 60n) % 60n)}:${pad(secs % 60n)}${trimmedFraction(nanos % 1_000_000_000n)}`;
}

/** timetz (`HH:MM:SS[.f]±HH[:MM[:SS]]`) → Debezium's ZonedTime: the time in UTC, `Z`. */
function zonedTime(text: string): string {
  const m = /^(\d\d:\d\d:\d\d(?:\.\d+)?)([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?$/.exec(text);
  if (!m) throw new Error(`unsupported timetz ${text}`);
  const offset = BigInt(Number(m[3]) * 3600 + Number(m[4] ?? 0) * 60 + Number(m[5] ?? 0)) * 1_000_000_000n * (m[2] === '-' ? -1n : 1n);
  const day = 86_400n * 1_000_000_000n;
  const utc = (((timeNanos(m[1]!) - offset) % day) + day) % day;
  return `${isoTime(utc)}Z`;
}

/** timestamptz (reader form, `…Z`) → ZonedTimestamp: always six fraction digits. */
function zonedTimestamp(text: string): string {
  if (text === 'infinity' || text === '-infinity') return text;
  const micros = timestampMicros(text);
  const days = floorDiv(micros, 86_400_000_000n);
  const ofDay = micros - days * 86_400_000_000n;
  const secs = ofDay / 1_000_000n;
  return `${isoDate(Number(days))}T${pad(secs / 3600n)}:${pad((secs / 60n) % 60n)}:${pad(secs % 60n)}.${pad(ofDay % 1_000_000n, 6)}Z`;
}

/** ISO-8601 interval (IntervalStyle=iso_8601, each field signed) → its fields. */
function intervalFields(text: string): { years: bigint; months: bigint; days: bigint; hours: bigint; minutes: bigint; micros: bigint } {
  const m = /^P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)D)?(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d+)?)S)?)?$/.exec(text);
  if (!m) throw new Error(`unsupported interval ${text}`);
  const sec = m[6] ?? '0';
  const { value, scale } = unscaled(sec);
  return {
    years: BigInt(m[1] ?? 0),
    months: BigInt(m[2] ?? 0),
    days: BigInt(m[3] ?? 0),
    hours: BigInt(m[4] ?? 0),
    minutes: BigInt(m[5] ?? 0),
    micros: (value * 1_000_000n) / 10n ** BigInt(scale),
  };
}

function interval(text: string, s: DebeziumSettings): unknown {
  const f = intervalFields(text);
  if (s.intervalHandlingMode === 'string') {
    const sec = f.micros % 1_000_000n === 0n ? String(f.micros / 1_000_000n) : (Number(f.micros) / 1e6).toString();
    return `P${f.years}Y${f.months}M${f.days}DT${f.hours}H${f.minutes}M${sec}S`;
  }
  // MicroDuration: a month is 30.4375 days (365.25 / 12); 30.4375 days = 2 629 800 000 000 µs exactly
  const months = f.years * 12n + f.months;
  const micros = months * 2_629_800_000_000n + f.days * 86_400_000_000n + f.hours * 3_600_000_000n + f.minutes * 60_000_000n + f.micros;
  return rawJSON(String(micros > LONG_MAX ? LONG_MAX : micros < LONG_MIN ? LONG_MIN : micros));
}

/** Precision of a time/timestamp column from its typmod (−1: the default 6). */
const precision = (typmod: number): number => (typmod < 0 ? 6 : typmod);
/** Scale of a numeric column from its typmod, or null when it declares none. */
const numericScale = (typmod: number): number | null => (typmod < 4 ? null : (typmod - 4) & 0xffff);

/** One value in Debezium's encoding. `value` is the reader's decoded value (non-null). */
export function debeziumValue(type: string, typmod: number, value: unknown, s: DebeziumSettings): unknown {
  if (type.endsWith('[]')) {
    const element = type.slice(0, -2);
    if (!Array.isArray(value)) return value;
    // Debezium maps one-dimensional arrays only: an inner array becomes null (recorded)
    return value.map((v: unknown) => (v === null || Array.isArray(v) ? null : debeziumValue(element, -1, v, s)));
  }
  switch (type) {
    case 'int8':
      return rawJSON(String(value));
    case 'numeric':
      return decimal(String(value), s, numericScale(typmod));
    case 'money':
      return decimal(moneyDigits(String(value)), s, 2);
    case 'date':
      return s.timePrecisionMode === 'isostring' ? `${isoDate(dateDays(String(value)))}Z` : dateDays(String(value));
    case 'time': {
      const nanos = timeNanos(String(value));
      if (s.timePrecisionMode === 'isostring') return `${isoTime(nanos % 86_400_000_000_000n)}Z`;
      return precision(typmod) <= 3 ? Number(nanos / 1_000_000n) : Number(nanos / 1000n);
    }
    case 'timetz':
      return zonedTime(String(value));
    case 'timestamp': {
      const micros = timestampMicros(String(value));
      if (s.timePrecisionMode === 'isostring') return isoInstant(micros);
      return rawJSON(String(precision(typmod) <= 3 ? floorDiv(micros, 1000n) : micros));
    }
    case 'timestamptz':
      return zonedTimestamp(String(value));
    case 'interval':
      return interval(String(value), s);
    default:
      // bool, int2/int4, oid, float4/float8 (NaN/±Infinity as strings, like the JsonConverter), text
      // types, uuid, enums, inet and other text forms, bytea (base64 already), json/jsonb (text here)
      return value;
  }
}

/** A row image in Debezium's encoding, every column present in column order (absent ones null). */
export function debeziumRow(
  columns: readonly DebeziumColumn[],
  row: Record<string, unknown>,
  s: DebeziumSettings,
  unchangedToast?: readonly string[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const c of columns) {
    if (unchangedToast?.includes(c.name)) {
      out[c.name] = s.unavailableValuePlaceholder;
      continue;
    }
    const v = row[c.name];
    out[c.name] = v === null || v === undefined ? null : debeziumValue(c.type, c.typmod, v, s);
  }
  return out;
}
