/**
 * PostgreSQL text representation → JSON value, by type. Pure functions; the replication stream and
 * the snapshot both receive values in text form (sessions run with TimeZone=UTC, DateStyle=ISO,
 * IntervalStyle=iso_8601, extra_float_digits=3) and decode them here, so both paths give identical
 * JSON. The mapping table is in docs/reader.md ("Type mapping").
 */

import { parseJsonExact } from './exactJson.js';

export type Decoder = (text: string) => unknown;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

export const decodeBool: Decoder = (t) => t === 't' || t === 'true';

export const decodeInt: Decoder = (t) => Number(t);

/** int8: a JSON number while exact, a decimal string beyond ±(2^53 − 1). */
export const decodeInt8: Decoder = (t) => {
  const b = BigInt(t);
  return b > MAX_SAFE || b < MIN_SAFE ? t : Number(b);
};

/** float4/float8: numbers; NaN and ±Infinity (not JSON) as the strings PostgreSQL prints. */
export const decodeFloat: Decoder = (t) => {
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
};

/** numeric: always the exact decimal string (Debezium decimal.handling.mode=string). */
export const decodeText: Decoder = (t) => t;

/** bytea (hex output format `\x0a0b`) → base64. */
export const decodeBytea: Decoder = (t) => {
  if (t.startsWith('\\x')) return Buffer.from(t.slice(2), 'hex').toString('base64');
  return Buffer.from(unescapeByteaEscape(t), 'binary').toString('base64');
};

function unescapeByteaEscape(t: string): string {
  return t.replace(/\\(\\|[0-7]{3})/g, (_m, g: string) => (g === '\\' ? '\\' : String.fromCharCode(parseInt(g, 8))));
}

/** json/jsonb → the JSON value itself; a number keeps its exact source digits (big ints, long decimals). */
export const decodeJson: Decoder = parseJsonExact;

/** date: `YYYY-MM-DD` (and `infinity`/`-infinity`, `… BC` as printed). */
export const decodeDate: Decoder = (t) => t;

/** time: `HH:MM:SS[.ffffff]`. */
export const decodeTime: Decoder = (t) => t;

/** timestamp without time zone: ISO-8601 local date-time, `YYYY-MM-DDTHH:MM:SS[.ffffff]`. */
export const decodeTimestamp: Decoder = (t) => (/^\d{4,}-\d\d-\d\d \d/.test(t) ? t.replace(' ', 'T') : t);

/**
 * timestamptz → ISO-8601 in UTC with `Z`, microseconds kept: `2024-05-01T10:00:00.123456Z`. The
 * session runs in UTC, but any offset PostgreSQL prints is applied so the instant is right regardless.
 */
export const decodeTimestamptz: Decoder = (t) => {
  const m = /^(\d{4,})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)(\.\d+)?([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?$/.exec(t);
  if (!m) return t; // infinity, -infinity, BC dates: as printed
  const [, y, mo, d, h, mi, s, frac, sign, oh, om, os] = m;
  const offsetSec = (Number(oh) * 3600 + Number(om ?? 0) * 60 + Number(os ?? 0)) * (sign === '-' ? -1 : 1);
  const fraction = frac ?? '';
  if (offsetSec === 0) return `${y}-${mo}-${d}T${h}:${mi}:${s}${fraction}Z`;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)) - offsetSec * 1000;
  const iso = new Date(ms).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  return `${iso.slice(0, 19)}${fraction}Z`;
};

/** interval: ISO-8601 duration (`P1Y2M3DT4H5M6S`, IntervalStyle=iso_8601). */
export const decodeInterval: Decoder = (t) => t;

/** Decoders for built-in scalar types by OID. Anything absent (enums, domains, text-like) → string. */
export const builtinDecoders: ReadonlyMap<number, Decoder> = new Map<number, Decoder>([
  [16, decodeBool],
  [17, decodeBytea],
  [20, decodeInt8],
  [21, decodeInt],
  [23, decodeInt],
  [26, decodeInt],
  [114, decodeJson],
  [3802, decodeJson],
  [700, decodeFloat],
  [701, decodeFloat],
  [1700, decodeText],
  [790, decodeText],
  [1082, decodeDate],
  [1083, decodeTime],
  [1114, decodeTimestamp],
  [1184, decodeTimestamptz],
  [1186, decodeInterval],
  [1266, decodeText],
  [2950, decodeText],
]);

/**
 * Parses a PostgreSQL array literal (`{1,2,NULL}`, `{{a,b},{"c d",e}}`, `[0:1]={…}`) into nested JS
 * arrays, decoding each element with `element`.
 */
export function parseArray(text: string, element: Decoder, delimiter = ','): unknown[] {
  let i = 0;
  if (text.startsWith('[')) {
    const eq = text.indexOf('=');
    i = eq + 1;
  }
  const parseLevel = (): unknown[] => {
    if (text[i] !== '{') throw new Error(`malformed array literal: ${text.slice(0, 80)}`);
    i++;
    const out: unknown[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      const ch = text[i];
      if (ch === '{') {
        out.push(parseLevel());
      } else if (ch === '"') {
        i++;
        let v = '';
        while (i < text.length && text[i] !== '"') {
          if (text[i] === '\\') i++;
          v += text[i];
          i++;
        }
        i++;
        out.push(element(v));
      } else {
        let j = i;
        while (j < text.length && text[j] !== delimiter && text[j] !== '}') j++;
        const raw = text.slice(i, j).trim();
        i = j;
        out.push(raw === 'NULL' ? null : element(raw));
      }
      if (text[i] === delimiter) {
        i++;
        continue;
      }
      if (text[i] === '}') {
        i++;
        return out;
      }
      throw new Error(`malformed array literal: ${text.slice(0, 80)}`);
    }
  };
  return parseLevel();
}

/**
 * How a type's text is decoded, as data: a built-in's OID (its decoder in `builtinDecoders`), `text`
 * (the text itself), or an array of an element spec with its delimiter. Structured-clonable, so a
 * snapshot reader thread (`readWorker.ts`) rebuilds the very decoders (`decoderOf`) the registry hands out (the row
 * JSON writer's fast paths compare decoders by identity).
 */
export type DecoderSpec = number | 'text' | { array: DecoderSpec; delimiter: string };

const arrayDecoders = new WeakMap<object, Decoder>();
const arrayElements = new WeakMap<Decoder, { element: Decoder; delimiter: string }>();

/** An array decoder's element decoder and delimiter (`decoderOf`'s); undefined for any other decoder. */
export function arrayElementOf(decoder: Decoder): { element: Decoder; delimiter: string } | undefined {
  return arrayElements.get(decoder);
}

/** The decoder a spec describes (the same function for the same built-in). */
export function decoderOf(spec: DecoderSpec): Decoder {
  if (spec === 'text') return decodeText;
  if (typeof spec === 'number') return builtinDecoders.get(spec) ?? decodeText;
  let d = arrayDecoders.get(spec);
  if (d === undefined) {
    const elem = decoderOf(spec.array);
    const delim = spec.delimiter;
    d = (t) => parseArray(t, elem, delim);
    arrayDecoders.set(spec, d);
    arrayElements.set(d, { element: elem, delimiter: delim });
  }
  return d;
}
