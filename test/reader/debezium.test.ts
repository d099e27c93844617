/**
 * The golden test of CDC_EVENT_FORMAT=debezium: the workload the real Debezium 3.6.1 connector was
 * recorded on (test/fixtures/debezium/meta.json, `npm run debezium:record`) is replayed, under a
 * schema and topic prefix of its own, against the real PostgreSQL and Kafka through the reader; the
 * topic (keys, values, tombstones) must be the recorded one, record by record, after parsing.
 *
 * Left out of the comparison, because they differ by nature:
 * - `ts_ms`, `ts_us`, `ts_ns` at the top level and in `source` (wall clock and commit times);
 * - `source.version` (the reader's version, not Debezium's);
 * - `source.lsn`, `source.txId`, `source.sequence` are compared by shape (another server, other WAL
 *   positions): integers; `sequence` is `[null,"<lsn>"]` in the snapshot, and `[<previous commit> or
 *   null,"<lsn>"]` in the stream;
 * - the `name` column `nm` in streamed events: Debezium 3.6.1 streams `name` columns as null (its
 *   snapshot reads them), the reader keeps the value (docs/reader.md).
 * With schemas (`*.schemas`, `value.converter.schemas.enable=true` and
 * `key.converter.schemas.enable=true`) the key and value schemas are compared whole, with their
 * names (`<topic.prefix>.<schema>.<table>.Value`, `.Key`, `.Envelope`) under the recorded prefix and
 * schema; the payloads with the exclusions above.
 */
import { afterAll, describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { cleanup, eventually, pgClient, readerEnv, startReader, TopicCollector, uniqueName } from './helpers.js';

const fixtures = new URL('../fixtures/debezium/', import.meta.url);
interface Meta {
  schema: string;
  prefix: string;
  topic: string;
  variants: { name: string; file: string; schemasEnable: boolean; settings: Record<string, string> }[];
  workload: { setup: string[]; stream: string[] };
}
const meta = JSON.parse(readFileSync(new URL('meta.json', fixtures), 'utf8')) as Meta;

/** JSON with exact integers (int8 limits, microsecond timestamps beyond 2^53 become BigInt). */
const exact = (text: string): unknown =>
  JSON.parse(text, ((_k: string, v: unknown, ctx?: { source?: string }) =>
    typeof v === 'number' && ctx?.source !== undefined && String(v) !== ctx.source && !/[.eE]/.test(ctx.source) ? BigInt(ctx.source) : v) as (
    k: string,
    v: unknown,
  ) => unknown);

interface Rec {
  topic: string;
  key: unknown;
  value: Record<string, unknown> | null;
}

const STREAMED_NAME_COLUMN = 'nm';

/** A schema's names (`<prefix>.<schema>.<table>.Value`) under the recorded prefix and schema. */
function renamed(schema: unknown, names: { schema: string; prefix: string }): unknown {
  return JSON.parse(JSON.stringify(schema).replaceAll(`"${names.prefix}.${names.schema}.`, `"${meta.prefix}.${meta.schema}.`));
}

const isWrapped = (v: unknown): v is { schema: unknown; payload: unknown } => typeof v === 'object' && v !== null && 'schema' in v && 'payload' in v;

/**
 * Checks the by-shape fields, then blanks every field excluded from the comparison. With schemas
 * (`*.schemas` variants) key and value are `{schema, payload}`: the schema is compared whole (its
 * names under the recorded prefix and schema), the payload like a schemaless value.
 */
function comparable(r: Rec, names: { schema: string; prefix: string }): Rec {
  const topic = r.topic.replace(`${names.prefix}.${names.schema}.`, `${meta.prefix}.${meta.schema}.`);
  const key = isWrapped(r.key) ? { schema: renamed(r.key.schema, names), payload: r.key.payload } : r.key;
  if (isWrapped(r.value)) {
    const payload = comparable({ topic: r.topic, key: null, value: r.value.payload as Record<string, unknown> | null }, names).value;
    return { topic, key, value: { schema: renamed(r.value.schema, names), payload } };
  }
  if (r.value === null) return { topic, key, value: null };
  const v = structuredClone(r.value) as Record<string, unknown> & { source: Record<string, unknown> };
  const s = v.source;
  expect(typeof s.lsn === 'number' && Number.isInteger(s.lsn) && s.lsn > 0).toBe(true);
  expect(typeof s.txId === 'number' && Number.isInteger(s.txId)).toBe(true);
  const seq = JSON.parse(s.sequence as string) as unknown[];
  expect(seq).toHaveLength(2);
  expect(seq[1]).toBe(String(s.lsn));
  if (v.op === 'r') expect(seq[0]).toBeNull();
  else expect(seq[0] === null || (typeof seq[0] === 'string' && /^\d+$/.test(seq[0]))).toBe(true);
  for (const f of ['ts_ms', 'ts_us', 'ts_ns']) {
    expect(typeof v[f] === 'number' || typeof v[f] === 'bigint').toBe(true);
    expect(typeof s[f] === 'number' || typeof s[f] === 'bigint').toBe(true);
    v[f] = s[f] = '<time>';
  }
  s.version = '<version>';
  s.lsn = s.txId = s.sequence = '<shape>';
  if (s.name === names.prefix) s.name = meta.prefix;
  if (s.schema === names.schema) s.schema = meta.schema;
  if (v.op !== 'r') {
    for (const image of [v.before, v.after] as (Record<string, unknown> | null)[]) {
      if (image && STREAMED_NAME_COLUMN in image) image[STREAMED_NAME_COLUMN] = '<name column>';
    }
  }
  return { topic, key, value: v };
}

/** `CDC_DEBEZIUM_SETTINGS` for a recorded variant: its connector properties as they are. */
const settingsOf = (settings: Record<string, string>): string =>
  Object.entries(settings)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

describe.each(meta.variants.map((v) => [v.name, v] as const))('debezium format: golden %s', (_name, variant) => {
  const name = uniqueName(`rd_dbz_${variant.name}`);
  const schema = uniqueName(meta.schema);
  const prefix = name.replace(/_/g, '-');
  const topicName = `${prefix}.${schema}.all_types`;
  let c: pg.Client | undefined;
  let reader: Awaited<ReturnType<typeof startReader>> | undefined;
  let topic: TopicCollector | undefined;

  afterAll(async () => {
    await reader?.stop();
    await topic?.close();
    if (c) {
      await cleanup(c, name, [schema]);
      await c.end();
    }
  });

  test('the reader writes what Debezium 3.6.1 wrote for the workload, record by record', async () => {
    const expected = readFileSync(new URL(variant.file, fixtures), 'utf8')
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => exact(l) as Rec);
    c = await pgClient();
    const sql = (s: string) => s.replaceAll(meta.schema, schema);
    for (const s of meta.workload.setup) await c.query(sql(s));
    const env: Record<string, string> = {
      CDC_EVENT_FORMAT: 'debezium',
      CDC_SERVER_NAME: prefix,
      CDC_TABLES: `${schema}.all_types`,
      // two rows per chunk: the snapshot's `last` marker is found across a chunk boundary
      CDC_SNAPSHOT_CHUNK_ROWS: '2',
    };
    // the recorder's converters had schemas on or off for key and value alike
    const schemas: Record<string, string> = variant.schemasEnable ? { 'value.converter.schemas.enable': 'true', 'key.converter.schemas.enable': 'true' } : {};
    const settings = { ...variant.settings, ...schemas };
    if (Object.keys(settings).length > 0) env.CDC_DEBEZIUM_SETTINGS = settingsOf(settings);
    reader = await startReader(readerEnv(name, env));
    topic = await TopicCollector.start([topicName]);
    for (const s of meta.workload.stream) await c.query(sql(s));
    // the workload's last statement inserts the sentinel row 999
    const t = topic;
    await eventually('sentinel record', () => (t.records.some((r) => r.key?.includes('{"id":999}') === true) ? true : undefined), 60_000);

    const actual: Rec[] = [...t.records]
      .sort((a, b) => a.partition - b.partition || Number(a.offset - b.offset))
      .map((r) => ({
        topic: topicName,
        key: r.key === undefined ? null : exact(r.key),
        value: r.value === null ? null : (exact(r.value) as Record<string, unknown>),
      }));
    const names = { schema, prefix };
    const want = expected.map((r) => comparable({ topic: r.topic, key: r.key, value: r.value }, { schema: meta.schema, prefix: meta.prefix }));
    const got = actual.map((r) => comparable(r, names));
    const opOf = (r: Rec) => (isWrapped(r.value) ? (r.value.payload as { op?: string } | null)?.op : r.value?.op) ?? null;
    const keyOf = (r: Rec) => (isWrapped(r.key) ? r.key.payload : r.key);
    expect(got.map((r) => [keyOf(r), opOf(r)])).toEqual(want.map((r) => [keyOf(r), opOf(r)]));
    for (const [i, w] of want.entries()) expect({ i, ...got[i] }).toEqual({ i, ...w });
  });
});
