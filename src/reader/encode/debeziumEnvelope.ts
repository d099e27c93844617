/**
 * The record value and key in Debezium's layout (CDC_EVENT_FORMAT=debezium), derived from the reader's
 * own event: the same change, only laid out and encoded as Debezium 3.6's PostgreSQL connector writes it
 * through the JsonConverter with `schemas.enable=false` (test/fixtures/debezium, the golden test
 * test/reader/debezium.test.ts). Pure.
 */
import type { ChangeEvent, RowImage } from '../../shared/events/changeEvent.js';
import type { DebeziumColumn, DebeziumSettings } from './debezium.js';
import { debeziumRow } from './debezium.js';
import { envelopeSchemaJson, keySchemaJson, type SchemaNames } from './debeziumSchema.js';
import { READER_VERSION } from './envelope.js';

const J = JSON.stringify;

/** Key columns by name, per column list (one list per relation or snapshot chunk). */
const byName = new WeakMap<readonly DebeziumColumn[], Map<string, DebeziumColumn>>();
function keyColumns(columns: readonly DebeziumColumn[], key: RowImage): DebeziumColumn[] {
  let map = byName.get(columns);
  if (map === undefined) byName.set(columns, (map = new Map(columns.map((c) => [c.name, c]))));
  // A key column the list does not know (cannot happen: keys are taken from the same columns) stays as it is.
  return Object.keys(key).map((name) => map.get(name) ?? { name, type: 'unknown', typmod: -1 });
}

/** The names Debezium's schema names are made of: `<topic.prefix>.<schema>.<table>`. */
const namesOf = (event: ChangeEvent): SchemaNames => ({ prefix: event.source.name, schema: event.source.schema, table: event.source.table });

/**
 * The record key: `{"id":1}`, each value in the key column's Debezium encoding (null for a truncate);
 * `{"schema":…,"payload":{"id":1}}` with `key.converter.schemas.enable=true`.
 */
export function debeziumKeyJson(event: Pick<ChangeEvent, 'key' | 'source'>, columns: readonly DebeziumColumn[], s: DebeziumSettings): string | null {
  const key = event.key;
  if (key === null) return null;
  const keyed = keyColumns(columns, key);
  const payload = J(debeziumRow(keyed, key, s));
  return s.keySchemasEnable ? `{"schema":${keySchemaJson(keyed, namesOf(event as ChangeEvent), s)},"payload":${payload}}` : payload;
}

/** Epoch microseconds of a reader time in ms (the fractional part carries the microseconds). */
const micros = (ms: number): number => Math.round(ms * 1000);

/**
 * The record value. Top level `before, after, source, transaction, op, ts_ms, ts_us, ts_ns`; `source`
 * in Debezium's field order, `xmin`/`origin`/`origin_lsn` null as Debezium sends them without
 * `xmin.fetch.interval.ms` or origins, without the reader's extensions (`commit_lsn`, `types`,
 * `unchanged_toast`, the top-level `key` and `old_key`). Every column is present in each row image
 * (a delete's `before` with the default identity: the key, the other columns null); an unchanged TOAST
 * value is `unavailable.value.placeholder`. `ts_ns` is written as text: it exceeds 2^53.
 * `extra` is appended inside the top-level object (the claim-check pointer's `deadletter`).
 */
export function debeziumEventJson(event: ChangeEvent, columns: readonly DebeziumColumn[], s: DebeziumSettings, extra = ''): string {
  const payload = debeziumPayloadJson(event, columns, s, extra);
  // `value.converter.schemas.enable=true`: the Connect schema beside the payload (debeziumSchema.ts)
  return s.valueSchemasEnable ? `{"schema":${envelopeSchemaJson(columns, namesOf(event), s)},"payload":${payload}}` : payload;
}

function debeziumPayloadJson(event: ChangeEvent, columns: readonly DebeziumColumn[], s: DebeziumSettings, extra: string): string {
  const src = event.source;
  const us = micros(src.ts_ms);
  const nowUs = micros(event.ts_ms);
  const before = event.before === null ? 'null' : J(debeziumRow(columns, event.before, s));
  const after = event.after === null ? 'null' : J(debeziumRow(columns, event.after, s, src.unchanged_toast));
  return (
    `{"before":${before},"after":${after},"source":{"version":${J(READER_VERSION)},"connector":"postgresql","name":${J(src.name)},` +
    `"ts_ms":${Math.floor(us / 1000)},"snapshot":${J(src.snapshot)},"db":${J(src.db)},"sequence":${src.sequence === null ? 'null' : J(src.sequence)},` +
    `"ts_us":${us},"ts_ns":${us}000,"schema":${J(src.schema)},"table":${J(src.table)},"txId":${src.txId ?? 'null'},"lsn":${src.lsn ?? 'null'},` +
    `"xmin":null,"origin":null,"origin_lsn":null},"transaction":null,"op":${J(event.op)},` +
    `"ts_ms":${Math.floor(nowUs / 1000)},"ts_us":${nowUs},"ts_ns":${nowUs}000${extra}}`
  );
}
