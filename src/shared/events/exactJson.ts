/**
 * JSON text → value without losing digits where the contract promises them: a json/jsonb value
 * keeps its numbers as written (`12345678901234567890`, `2.50`; README "Type mapping"), which
 * `JSON.parse` would round to a double. Such numbers become `JSON.rawJSON(source)`, which every
 * `JSON.stringify` downstream (the Elasticsearch client, ADX JSON lines, history values, the `__json`
 * copies) writes back verbatim; consumers compare values by their JSON (history `sameValue`) and see
 * them as objects (ADX `dynamic`).
 *
 * The reviver costs several times a plain parse, so it runs only where such numbers can be: for a
 * change event whose `source.types` names a json/jsonb column, and for any other text (an event of a
 * producer without `source.types`, a stored document) only when one of its numbers does not survive
 * the round trip.
 */

type RawJson = (text: string) => unknown;
/** `JSON.rawJSON` (Node 21+; not in TypeScript's lib yet): a value `JSON.stringify` writes as this exact text. */
export const rawJSON = (JSON as unknown as { rawJSON: RawJson }).rawJSON;
/** The text of a `JSON.rawJSON` value, or undefined for any other value. */
export function rawJsonText(value: unknown): string | undefined {
  return (JSON as unknown as { isRawJSON: (v: unknown) => boolean }).isRawJSON(value) ? (value as { rawJSON: string }).rawJSON : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Whether a double loses the number's text: it prints otherwise (`2.50`, `12345678901234567890123`),
 * or it is an integer beyond 2^53, which can print the same and still not be the number
 * (`9223372036825200000` is the double 9223372036825199616).
 */
function lossy(token: string, value: number): boolean {
  return String(value) !== token || (!Number.isSafeInteger(value) && /^-?\d+$/.test(token));
}

/** Reviver: a number whose text a double does not reproduce keeps its text. */
function exactNumbers(_key: string, value: unknown, context?: { source?: string }): unknown {
  return typeof value === 'number' && context?.source !== undefined && lossy(context.source, value) ? rawJSON(context.source) : value;
}

/** `source.types` of a change event (also inside Debezium's `{schema, payload}`), if it has one. */
function columnTypesOf(value: unknown): Record<string, unknown> | undefined {
  if (!isObject(value)) return undefined;
  const event = isObject(value.payload) && 'schema' in value ? value.payload : value;
  const types = isObject(event.source) ? event.source.types : undefined;
  return isObject(types) ? types : undefined;
}

function isJsonType(pgType: unknown): boolean {
  return pgType === 'json' || pgType === 'jsonb' || pgType === 'json[]' || pgType === 'jsonb[]';
}

/** Strings are skipped whole; every number token must read back as the same text. */
const TOKENS = /"[^"\\]*(?:\\.[^"\\]*)*"|-?\d[\d.eE+-]*/g;

function numbersRoundTrip(text: string): boolean {
  TOKENS.lastIndex = 0;
  for (let m = TOKENS.exec(text); m !== null; m = TOKENS.exec(text)) {
    const token = m[0];
    if (token.charCodeAt(0) !== 34 && lossy(token, Number(token))) return false;
  }
  return true;
}

/** `JSON.parse`, with every number a double cannot reproduce kept as `JSON.rawJSON` (throws like `JSON.parse`). */
export function parseJsonLossless(text: string): unknown {
  const value = JSON.parse(text) as unknown;
  const types = columnTypesOf(value);
  const lossy = types === undefined ? !numbersRoundTrip(text) : Object.values(types).some(isJsonType);
  return lossy ? (JSON.parse(text, exactNumbers) as unknown) : value;
}

/**
 * json/jsonb text → value, as `JSON.parse` with the exact-number reviver, but the reviver (several times
 * a plain parse) runs only when some number in the text does not read back as the same text.
 */
export function parseJsonExact(text: string): unknown {
  const value = JSON.parse(text) as unknown;
  return numbersRoundTrip(text) ? value : (JSON.parse(text, exactNumbers) as unknown);
}
