/**
 * The Connect schema part of Debezium's records (`value.converter.schemas.enable=true`,
 * `key.converter.schemas.enable=true` in CDC_DEBEZIUM_SETTINGS): what the JsonConverter writes as
 * `{"schema": …, "payload": …}` for Debezium 3.6's PostgreSQL connector, per column type and setting,
 * as recorded (test/fixtures/debezium/*.schemas.jsonl, the golden test test/reader/debezium.test.ts).
 * Pure; the schema text is built once per column list (one per relation or snapshot chunk).
 */
import type { DebeziumColumn, DebeziumSettings } from './debezium.js';

type Schema = Record<string, unknown>;

/** Precision and scale of a numeric column from its typmod (null when it declares none). */
function numericTypmod(typmod: number): { precision: number; scale: number } | null {
  if (typmod < 4) return null;
  const t = typmod - 4;
  return { precision: (t >> 16) & 0xffff, scale: t & 0xffff };
}

const precision = (typmod: number): number => (typmod < 0 ? 6 : typmod);

/** The schema of one value of a PostgreSQL type (without `optional` and `field`). */
function typeSchema(type: string, typmod: number, s: DebeziumSettings, enumLabels: readonly string[] | undefined): Schema {
  const named = (t: string, name: string, extra: Schema = {}): Schema => ({ type: t, name, version: 1, ...extra });
  const iso = s.timePrecisionMode === 'isostring';
  if (type.endsWith('[]')) {
    return { type: 'array', items: { ...typeSchema(type.slice(0, -2), -1, s, undefined), optional: true } };
  }
  switch (type) {
    case 'bool':
      return { type: 'boolean' };
    case 'int2':
      return { type: 'int16' };
    case 'int4':
      return { type: 'int32' };
    case 'int8':
    case 'oid':
      return { type: 'int64' };
    case 'float4':
      return { type: 'float' };
    case 'float8':
      return { type: 'double' };
    case 'numeric': {
      if (s.decimalHandlingMode === 'string') return { type: 'string' };
      const ps = numericTypmod(typmod);
      if (ps === null) {
        return {
          type: 'struct',
          fields: [
            { type: 'int32', optional: false, field: 'scale' },
            { type: 'bytes', optional: false, field: 'value' },
          ],
          name: 'io.debezium.data.VariableScaleDecimal',
          version: 1,
          doc: 'Variable scaled decimal',
        };
      }
      return named('bytes', 'org.apache.kafka.connect.data.Decimal', {
        parameters: { scale: String(ps.scale), 'connect.decimal.precision': String(ps.precision) },
      });
    }
    case 'money':
      return s.decimalHandlingMode === 'string' ? { type: 'string' } : named('bytes', 'org.apache.kafka.connect.data.Decimal', { parameters: { scale: '2' } });
    case 'uuid':
      return named('string', 'io.debezium.data.Uuid');
    case 'json':
    case 'jsonb':
      return named('string', 'io.debezium.data.Json');
    case 'bytea':
      return { type: s.binaryHandlingMode === 'base64' ? 'string' : 'bytes' };
    case 'date':
      return iso ? named('string', 'io.debezium.time.IsoDate') : named('int32', 'io.debezium.time.Date');
    case 'time':
      if (iso) return named('string', 'io.debezium.time.IsoTime');
      return precision(typmod) <= 3 ? named('int32', 'io.debezium.time.Time') : named('int64', 'io.debezium.time.MicroTime');
    case 'timetz':
      return named('string', 'io.debezium.time.ZonedTime');
    case 'timestamp':
      if (iso) return named('string', 'io.debezium.time.IsoTimestamp');
      return precision(typmod) <= 3 ? named('int64', 'io.debezium.time.Timestamp') : named('int64', 'io.debezium.time.MicroTimestamp');
    case 'timestamptz':
      return named('string', 'io.debezium.time.ZonedTimestamp');
    case 'interval':
      return s.intervalHandlingMode === 'string' ? named('string', 'io.debezium.time.Interval') : named('int64', 'io.debezium.time.MicroDuration');
    case 'enum':
      return named('string', 'io.debezium.data.Enum', { parameters: { allowed: (enumLabels ?? []).join(',') } });
    default:
      // text, varchar, bpchar, name, inet and the other text forms
      return { type: 'string' };
  }
}

function columnSchema(c: DebeziumColumn, s: DebeziumSettings): Schema {
  // `optional` sits after `type` (and `items`/`fields`) and before `name`, as the converter writes it
  // an enum (also through a domain) is known by its labels: the catalog's, whatever its type is called
  const { type, items, fields, ...rest } = typeSchema(c.enumLabels !== undefined && !c.type.endsWith('[]') ? 'enum' : c.type, c.typmod, s, c.enumLabels);
  return { type, ...(items ? { items } : {}), ...(fields ? { fields } : {}), optional: !c.notNull, ...rest, field: c.name };
}

const SOURCE_SCHEMA: Schema = {
  type: 'struct',
  fields: [
    { type: 'string', optional: false, field: 'version' },
    { type: 'string', optional: false, field: 'connector' },
    { type: 'string', optional: false, field: 'name' },
    { type: 'int64', optional: false, field: 'ts_ms' },
    {
      type: 'string',
      optional: true,
      name: 'io.debezium.data.Enum',
      version: 1,
      parameters: { allowed: 'true,first,first_in_data_collection,last_in_data_collection,last,false,incremental' },
      default: 'false',
      field: 'snapshot',
    },
    { type: 'string', optional: false, field: 'db' },
    { type: 'string', optional: true, field: 'sequence' },
    { type: 'int64', optional: true, field: 'ts_us' },
    { type: 'int64', optional: true, field: 'ts_ns' },
    { type: 'string', optional: false, field: 'schema' },
    { type: 'string', optional: false, field: 'table' },
    { type: 'int64', optional: true, field: 'txId' },
    { type: 'int64', optional: true, field: 'lsn' },
    { type: 'int64', optional: true, field: 'xmin' },
    { type: 'string', optional: true, field: 'origin' },
    { type: 'int64', optional: true, field: 'origin_lsn' },
  ],
  optional: false,
  name: 'io.debezium.connector.postgresql.Source',
  version: 1,
  field: 'source',
};

const TRANSACTION_SCHEMA: Schema = {
  type: 'struct',
  fields: [
    { type: 'string', optional: false, field: 'id' },
    { type: 'int64', optional: false, field: 'total_order' },
    { type: 'int64', optional: false, field: 'data_collection_order' },
  ],
  optional: true,
  name: 'event.block',
  version: 1,
  field: 'transaction',
};

/** `<topic.prefix>.<schema>.<table>`, the stem of Debezium's schema names. */
export interface SchemaNames {
  prefix: string;
  schema: string;
  table: string;
}

const stem = (n: SchemaNames): string => `${n.prefix}.${n.schema}.${n.table}`;

const envelopeCache = new WeakMap<readonly DebeziumColumn[], Map<string, string>>();

/** The value schema (`…Envelope`) as JSON text, cached per column list and names. */
export function envelopeSchemaJson(columns: readonly DebeziumColumn[], names: SchemaNames, s: DebeziumSettings): string {
  let byName = envelopeCache.get(columns);
  if (byName === undefined) envelopeCache.set(columns, (byName = new Map<string, string>()));
  const cacheKey = stem(names);
  const cached = byName.get(cacheKey);
  if (cached !== undefined) return cached;
  const row = (field: string): Schema => ({
    type: 'struct',
    fields: columns.map((c) => columnSchema(c, s)),
    optional: true,
    name: `${stem(names)}.Value`,
    field,
  });
  const text = JSON.stringify({
    type: 'struct',
    fields: [
      row('before'),
      row('after'),
      SOURCE_SCHEMA,
      TRANSACTION_SCHEMA,
      { type: 'string', optional: false, field: 'op' },
      { type: 'int64', optional: true, field: 'ts_ms' },
      { type: 'int64', optional: true, field: 'ts_us' },
      { type: 'int64', optional: true, field: 'ts_ns' },
    ],
    optional: false,
    name: `${stem(names)}.Envelope`,
    version: 2,
  });
  byName.set(cacheKey, text);
  return text;
}

/** The key schema (`…Key`) as JSON text: the key columns, in the key's order. */
export function keySchemaJson(keyColumns: readonly DebeziumColumn[], names: SchemaNames, s: DebeziumSettings): string {
  return JSON.stringify({
    type: 'struct',
    // a key column is never NULL (a whole-row key's may be: then the column's own nullability)
    fields: keyColumns.map((c) => columnSchema({ ...c, notNull: c.notNull ?? true }, s)),
    optional: false,
    name: `${stem(names)}.Key`,
  });
}
