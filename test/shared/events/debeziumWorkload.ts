/**
 * The workload the Debezium fixtures were recorded on (test/fixtures/debezium/meta.json), for the
 * sink-side tests: the recorded Debezium records as they are, and the same workload replayed through
 * the reader in the native format (real PostgreSQL and Kafka, a schema and slot of its own), so a test
 * can feed both to a sink and compare what it wrote.
 */
import { readFileSync } from 'node:fs';
import { parseJsonLossless } from '../../../src/shared/events/exactJson.js';
import { cleanup, eventually, pgClient, readerEnv, startReader, TopicCollector, uniqueName } from '../../reader/helpers.js';

const fixtures = new URL('../../fixtures/debezium/', import.meta.url);

export interface DebeziumMeta {
  schema: string;
  prefix: string;
  topic: string;
  variants: { name: string; file: string; schemasEnable: boolean; settings: Record<string, string> }[];
  workload: { setup: string[]; stream: string[] };
}

export const debeziumMeta = JSON.parse(readFileSync(new URL('meta.json', fixtures), 'utf8')) as DebeziumMeta;

/** A record as recorded: the Kafka key and value as the JsonConverter wrote them (parsed), null for a tombstone. */
export interface RecordedRecord {
  topic: string;
  partition: number;
  offset: number;
  key: unknown;
  value: unknown;
}

/** The recorded records of a variant, in topic order (numbers beyond a double kept exact, `JSON.rawJSON`). */
export function recordedVariant(name: string): RecordedRecord[] {
  const variant = debeziumMeta.variants.find((v) => v.name === name);
  if (variant === undefined) throw new Error(`no recorded Debezium variant ${name}`);
  return readFileSync(new URL(variant.file, fixtures), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => parseJsonLossless(l) as RecordedRecord);
}

/** A native record: the Kafka key and value text as the reader wrote them. */
export interface NativeRecord {
  key: string | undefined;
  value: string;
}

/**
 * Runs the workload through the reader (native format) under a schema of its own; the events' value
 * text names the recorded schema again (`source.schema`), so they route like the fixtures.
 */
export async function nativeWorkload(): Promise<NativeRecord[]> {
  const name = uniqueName('dbz_native');
  const schema = uniqueName(debeziumMeta.schema);
  const sql = (text: string) => text.replaceAll(debeziumMeta.schema, schema);
  const c = await pgClient();
  const topicName = `${name}_events`;
  let reader: Awaited<ReturnType<typeof startReader>> | undefined;
  let topic: TopicCollector | undefined;
  try {
    for (const s of debeziumMeta.workload.setup) await c.query(sql(s));
    reader = await startReader(readerEnv(name, { CDC_TABLES: `${schema}.all_types`, CDC_SNAPSHOT_CHUNK_ROWS: '2' }));
    topic = await TopicCollector.start([topicName]);
    for (const s of debeziumMeta.workload.stream) await c.query(sql(s));
    const t = topic;
    await eventually('sentinel event', () => (t.items.some((i) => i.event.after?.id === 999) ? true : undefined), 60_000);
    // The reader's control events (schema_change, op 'm') exist in the native format only (README "Schema
    // changes"): what the sinks do with them is tested elsewhere; here the row events are compared.
    return [...t.items]
      .filter((i) => i.event.op !== 'm')
      .sort((a, b) => a.partition - b.partition || Number(a.offset - b.offset))
      .map((i) => ({ key: i.key, value: i.raw.replace(`"schema":${JSON.stringify(schema)}`, `"schema":${JSON.stringify(debeziumMeta.schema)}`) }));
  } finally {
    await reader?.stop();
    await topic?.close();
    await cleanup(c, name, [schema]);
    await c.end();
  }
}
