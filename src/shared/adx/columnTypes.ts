/**
 * ADX column types from PostgreSQL column types (`source.types`, docs/reader.md "Column types"), and
 * what a value becomes in a column of its type (docs/adx.md "Column types"). A column's type follows
 * its PostgreSQL type, not its first value: `10.0` in a `double precision` column arrives as `10`,
 * which would type the column `long`, and ADX stores null for every later `10.5` (a value that does
 * not match the column type is nulled without an error). A value the column's type cannot hold (`NaN`
 * or `Infinity` in a `real` column, `infinity` in a `datetime` one, a numeric beyond a `decimal`) is
 * not handed to ADX to be nulled silently either: the typed column gets null and the value's text goes
 * to the row's `__raw_<column>` string column, where it stays exact and queryable.
 */
import { rawJSON, rawJsonText } from '../events/exactJson.js';
import type { KqlType } from './types.js';

/** The ADX type of a new column of this PostgreSQL type (`float8`, `numeric`, `int4[]`, `shop.mood`, ...). */
export function kqlTypeOf(pgType: string): KqlType {
  if (pgType.endsWith('[]')) return 'dynamic';
  switch (pgType) {
    case 'bool':
      return 'bool';
    case 'int2':
    case 'int4':
    case 'int8':
    case 'oid':
      return 'long';
    case 'float4':
    case 'float8':
      return 'real';
    case 'numeric':
      return 'decimal';
    case 'json':
    case 'jsonb':
      return 'dynamic';
    case 'date':
    case 'timestamp':
    case 'timestamptz':
      return 'datetime';
    case 'time':
      return 'timespan';
    default:
      // money (text in the server's lc_monetary format), timetz (an offset is no timespan), interval
      // (months and years have no fixed length), uuid (ADX: guid support is incomplete, use string),
      // bytea (base64), inet, ranges, user types: their text.
      return 'string';
  }
}

/** The name of the column that holds the text of the values `column` cannot hold. */
export function rawColumnName(column: string): string {
  return `__raw_${column}`;
}

/** Returned by `adxValue` for a value the column's type cannot hold. */
export const UNFIT: unique symbol = Symbol('unfit');

const INTEGER = /^-?\d+$/;
const FINITE_NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;
/** A plain decimal (PostgreSQL's numeric output: no exponent); group 1 integer digits, 2 fraction. */
const DECIMAL = /^[+-]?(\d*)(?:\.(\d*))?$/;
const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);
/** ADX `decimal` holds 34 significant digits. */
const DECIMAL_DIGITS = 34;

/**
 * The JSON value of `value` for a column of `type`, or `UNFIT`. Only what ADX cannot hold is refused;
 * everything else passes as it is (ADX parses strings into typed columns), except where the JSON
 * token matters: a `bigint` beyond 2^53 (a decimal string) becomes a JSON number (a JSON reader reads
 * an integer token as a 64-bit integer), and `24:00:00` (PostgreSQL's end of day) becomes the
 * timespan `1.00:00:00`. A numeric stays a string: a JSON number with a fraction may be read as a
 * double on its way to the decimal.
 */
export function adxValue(type: KqlType, value: unknown): unknown {
  if (value === null || value === undefined) return value;
  // An exact number already shaped (an int8 beyond 2^53, a json number): it fits when its text does.
  const raw = rawJsonText(value);
  if (raw !== undefined) return adxValue(type, raw) === UNFIT ? UNFIT : value;
  switch (type) {
    case 'real':
      if (typeof value === 'number') return value;
      if (typeof value === 'string' && FINITE_NUMBER.test(value)) {
        const number = Number(value);
        return Number.isFinite(number) ? number : UNFIT;
      }
      return UNFIT; // NaN, Infinity, -Infinity (strings for float columns), anything else
    case 'long':
    case 'int':
      return integer(value, type === 'int' ? 32 : 64);
    case 'decimal':
      return typeof value === 'number' || (typeof value === 'string' && fitsDecimal(value)) ? value : UNFIT;
    case 'datetime':
      // infinity, -infinity, BC dates and years beyond 9999: outside ADX's 0001-01-01 .. 9999-12-31.
      return typeof value === 'string' && (/infinity/i.test(value) || / BC$/.test(value) || /^(-|\d{5,})/.test(value)) ? UNFIT : value;
    case 'timespan':
      return typeof value === 'string' && /^24:00:00(\.0+)?$/.test(value) ? '1.00:00:00' : value;
    default:
      return value;
  }
}

function integer(value: unknown, bits: 32 | 64): unknown {
  if (typeof value === 'number') return Number.isInteger(value) && (bits === 64 || (value >= -(2 ** 31) && value < 2 ** 31)) ? value : UNFIT;
  if (typeof value !== 'string' || !INTEGER.test(value)) return UNFIT;
  const n = BigInt(value);
  if (bits === 32) return n >= -(2n ** 31n) && n < 2n ** 31n ? Number(n) : UNFIT;
  return n >= INT64_MIN && n <= INT64_MAX ? rawJSON(n.toString()) : UNFIT;
}

/** A plain decimal of at most 34 digits (integer digits without leading zeros, plus every fraction digit). */
function fitsDecimal(text: string): boolean {
  const m = DECIMAL.exec(text);
  if (!m || text === '' || /^[+-]?\.?$/.test(text)) return false;
  const integerDigits = (m[1] ?? '').replace(/^0+/, '').length;
  return integerDigits + (m[2] ?? '').length <= DECIMAL_DIGITS;
}

/** The text kept in `__raw_<column>`: a string as it is, anything else as JSON. */
export function rawText(value: unknown): string {
  return typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
}
