/**
 * Elasticsearch mappings from PostgreSQL column types (`source.types`, docs/reader.md "Column types"),
 * so a column's field type follows the column, not the first value Elasticsearch happens to see
 * (`10.0` arrives as `10`, which would map a `double precision` column `long` and truncate every
 * later fraction; a json column's first object would reject its next string). Each mapping accepts
 * every value the reader's documented type mapping produces (docs/sinks.md "Column types"):
 * - float4/float8/numeric → `double` with `ignore_malformed`: `NaN`, `±Infinity` and numerics beyond
 *   a double arrive as strings; they stay in `_source`, unindexed as numbers, and every value is also
 *   a keyword in `<field>.keyword` (exact match on `NaN`, on a numeric's exact digits);
 * - int8 → `long` (beyond 2^53 the value is a decimal string, which `long` parses exactly);
 * - date/timestamp/timestamptz → `date` with `ignore_malformed` and the same `.keyword` copy
 *   (`infinity`, `-infinity`, BC dates are kept and searchable as keywords);
 * - json/jsonb → an object with `enabled: false`: any shape is stored, nothing is parsed, and the
 *   sink adds the JSON text under `__json.<field>` (keyword + `.text`) so it stays searchable;
 * - arrays → their element's mapping; everything else (strings: text, time, interval, uuid, bytea,
 *   money, inet, ...) → the dynamic templates (keyword + `.text`), as before.
 */
import type { estypes } from '@elastic/elasticsearch';

const KEYWORD_COPY: Record<string, estypes.MappingProperty> = { keyword: { type: 'keyword', ignore_above: 1024 } };
const NUMBER: estypes.MappingProperty = { type: 'double', ignore_malformed: true, fields: KEYWORD_COPY };
const TIMESTAMP: estypes.MappingProperty = { type: 'date', ignore_malformed: true, fields: KEYWORD_COPY };
const JSON_VALUE: estypes.MappingProperty = { type: 'object', enabled: false };
const LONG: estypes.MappingProperty = { type: 'long' };

/** The explicit mapping of a column of this PostgreSQL type, or undefined for the dynamic templates. */
export function mappingForType(pgType: string): estypes.MappingProperty | undefined {
  switch (elementType(pgType)) {
    case 'float4':
    case 'float8':
    case 'numeric':
      return NUMBER;
    case 'int8':
    case 'int2':
    case 'int4':
    case 'oid':
      return LONG;
    case 'date':
    case 'timestamp':
    case 'timestamptz':
      return TIMESTAMP;
    case 'json':
    case 'jsonb':
      return JSON_VALUE;
    default:
      return undefined;
  }
}

/** Whether the column holds JSON (json, jsonb, or arrays of them): stored disabled, with a text copy. */
export function isJsonType(pgType: string): boolean {
  const element = elementType(pgType);
  return element === 'json' || element === 'jsonb';
}

function elementType(pgType: string): string {
  return pgType.endsWith('[]') ? pgType.slice(0, -2) : pgType;
}

/**
 * The JSON text of a json/jsonb value as PostgreSQL prints jsonb (`{"a": [1, 2]}`: a space after
 * `,` and `:`), for the `__json` copy: its keyword equals `jsonb::text`, and the text analyzer splits
 * array numbers (`[1,2]` compact would be one token `1,2`). Numbers a double cannot hold
 * (`JSON.rawJSON`, see decode.ts) keep their digits.
 */
export function jsonText(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v: unknown) => (v === undefined ? 'null' : jsonText(v))).join(', ')}]`;
  if (typeof value === 'object' && value !== null && !(JSON as unknown as { isRawJSON(v: unknown): boolean }).isRawJSON(value)) {
    const entries: string[] = [];
    for (const [k, v] of Object.entries(value)) if (v !== undefined) entries.push(`${JSON.stringify(k)}: ${jsonText(v)}`);
    return `{${entries.join(', ')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** `format_type` names (what a schema-change event carries) → the type names of `source.types`. */
const FORMAT_TYPE_NAMES: Record<string, string> = {
  smallint: 'int2',
  integer: 'int4',
  bigint: 'int8',
  real: 'float4',
  'double precision': 'float8',
  numeric: 'numeric',
  'timestamp without time zone': 'timestamp',
  'timestamp with time zone': 'timestamptz',
  date: 'date',
  json: 'json',
  jsonb: 'jsonb',
  boolean: 'bool',
  oid: 'oid',
};

/** The `source.types`-style name of a `format_type` (`numeric(10,2)` → `numeric`, `integer[]` → `int4[]`); other types as they are, without a modifier. */
export function typeNameOf(formatType: string): string {
  const array = formatType.endsWith('[]');
  const base = (array ? formatType.slice(0, -2) : formatType).replace(/\(.*\)/, '').trim();
  const name = FORMAT_TYPE_NAMES[base] ?? base;
  return array ? `${name}[]` : name;
}

const STRING_FIELD = 'keyword';
/** What the strings dynamic template (templates.ts) maps a string to. */
const STRING_MAPPING: estypes.MappingProperty = { type: 'keyword', ignore_above: 1024, fields: { text: { type: 'text' } } };

/**
 * The Elasticsearch field type a column of this `format_type` gets: its explicit mapping's, else the
 * dynamic one its JSON values get (booleans `boolean`, integers `long`, everything else a string:
 * `keyword` by the strings template). A field already mapped with another type cannot take the column
 * any more (README "Schema changes").
 */
export function fieldTypeOf(formatType: string): string {
  const name = typeNameOf(formatType);
  const explicit = mappingForType(name);
  if (explicit !== undefined) return explicit.type ?? 'object';
  const element = elementType(name);
  if (element === 'bool') return 'boolean';
  return STRING_FIELD;
}

/** The mapping a column of this `format_type` gets: its explicit one, else the one its values would get dynamically (fieldTypeOf). */
export function columnMapping(formatType: string): estypes.MappingProperty {
  const explicit = mappingForType(typeNameOf(formatType));
  if (explicit !== undefined) return explicit;
  return fieldTypeOf(formatType) === 'boolean' ? { type: 'boolean' } : STRING_MAPPING;
}
