/**
 * The end-to-end tests' kit (reader → Kafka → trigger-shaped batches → handlers → Elasticsearch):
 * delivering what the topic holds as the Functions host does, and comparing an index's `-live`
 * documents with PostgreSQL's own JSON of the table's rows, normalised per the documented type
 * mapping (README "Type mapping"). Numbers are compared as their source text on both sides.
 */
import type { Client } from '@elastic/elasticsearch';
import type { Readable } from 'node:stream';
import type pg from 'pg';
import { BatchProcessingError } from '../../src/shared/core/errors.js';
import type { EventHubBatchHandler } from '../../src/functions/host/eventHubBatchHandler.js';
import type { Collected } from '../reader/helpers.js';
import { triggerBatch } from './triggerBatch.js';

/** A handler with the function name its batches carry (`elasticsearchSink`, `changeHistory`). */
export interface DeliveryTarget {
  handler: EventHubBatchHandler;
  functionName: string;
}

/**
 * Delivers `items` to every target as the host does: one batch per Kafka partition, Buffer bodies,
 * partitions in the given order; a batch that fails (BatchProcessingError: records to retry) is
 * delivered again in the next round, as the retry policy does, until every batch succeeded (each
 * function has its own consumer group, so each target retries on its own). Returns the retries.
 */
export async function deliverAsHost(
  items: readonly Collected[],
  targets: readonly DeliveryTarget[],
  order: (partitions: number[]) => number[] = (partitions) => partitions,
): Promise<number> {
  let retries = 0;
  for (const { handler, functionName } of targets) {
    const pending = new Map<number, Collected[]>();
    for (const item of items) pending.set(item.partition, [...(pending.get(item.partition) ?? []), item]);
    for (let round = 0; pending.size > 0; round++) {
      if (round === 5) throw new Error(`${functionName}: partitions ${[...pending.keys()].join(', ')} still failing after 5 rounds`);
      for (const partition of order([...pending.keys()])) {
        const list = pending.get(partition)!;
        const { messages, context } = triggerBatch(
          list.map((i) => Buffer.from(i.raw)),
          { partitionId: String(partition), firstOffset: Number(list[0]?.offset ?? 0n), retryCount: round, functionName },
        );
        try {
          await handler(messages, context);
          pending.delete(partition);
        } catch (error) {
          if (!(error instanceof BatchProcessingError)) throw error;
          retries++;
        }
      }
    }
  }
  return retries;
}

/** JSON with every number kept as its source text (`{ n: '<digits>' }`), so no side loses digits. */
export function exactJson(text: string): unknown {
  return JSON.parse(text, ((_key: string, value: unknown, context?: { source?: string }) => (typeof value === 'number' ? { n: context?.source } : value)) as (
    key: string,
    value: unknown,
  ) => unknown);
}

async function readStream(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

/** The `-live` documents of an index, parsed from the raw response body (exact numbers), without the sink's `__` fields, by `id`. */
export async function liveDocuments(client: Client, index: string): Promise<Record<string, unknown>[]> {
  await client.indices.refresh({ index });
  const stream = (await client.search({ index: `${index}-live`, size: 1000, sort: ['id'] }, { asStream: true })) as unknown as Readable;
  const body = exactJson(await readStream(stream)) as { hits: { hits: { _source: Record<string, unknown> }[] } };
  return body.hits.hits.map((h) => Object.fromEntries(Object.entries(h._source).filter(([k]) => !k.startsWith('__'))));
}

export const numberText = (v: unknown): unknown => (typeof v === 'object' && v !== null && 'n' in v ? (v as { n: string }).n : v);
const base64OfBytea = (v: unknown): unknown => (typeof v === 'string' ? Buffer.from(v.slice(2), 'hex').toString('base64') : v);
const mapArray = (f: (v: unknown) => unknown) => (v: unknown) => (Array.isArray(v) ? v.map(f) : v);
/** int8: a number while exact, else the decimal string (README "Type mapping"). */
const int8 = (v: unknown): unknown => {
  const text = numberText(v);
  return typeof text === 'string' && /^-?\d+$/.test(text) && !Number.isSafeInteger(Number(text)) ? text : v;
};

/**
 * PostgreSQL's `to_json` of a row → the documented event values, by column name (the columns of
 * the tables with every type, see test/functions/pipelineValues.test.ts). `to_json` writes numeric
 * and bigint as numbers (the mapping: decimal strings, bigint beyond 2^53 as a string), oid as a
 * string (a number), bytea as `\x…` (base64), timestamptz with `+00:00` (`Z`); composite and timetz
 * values are compared with their text form.
 */
const NORMALISE: Record<string, (v: unknown) => unknown> = {
  i8: int8,
  o: (v) => (typeof v === 'string' ? { n: v } : v),
  n: numberText,
  n2: numberText,
  an: mapArray(numberText),
  ba: base64OfBytea,
  tstz: (v) => (typeof v === 'string' ? v.replace(/\+00:00$/, 'Z') : v),
};
const AS_TEXT = ['tz', 'pr'];

export interface ExpectedRowsOptions {
  /** Columns compared with their text form (default the timetz and composite columns `tz`, `pr`). */
  asText?: readonly string[];
  /** Columns the events do not carry (generated columns: README "Type mapping"). */
  without?: readonly string[];
}

/** The rows of `table` (`schema.table`, SQL) as the `-live` documents must hold them, ordered by `id`. */
export async function expectedRows(c: pg.Client, table: string, options: ExpectedRowsOptions = {}): Promise<Record<string, unknown>[]> {
  const asText = options.asText ?? AS_TEXT;
  const { rows } = await c.query<{ j: string; texts: Record<string, string | null> }>(
    `SELECT to_json(v)::text AS j, json_build_object(${asText.map((col) => `'${col}', ${col}::text`).join(', ')}) AS texts FROM ${table} v ORDER BY id`,
  );
  return rows.map(({ j, texts }) => {
    const row = exactJson(j) as Record<string, unknown>;
    for (const [col, f] of Object.entries(NORMALISE)) if (col in row) row[col] = f(row[col]);
    for (const col of asText) if (col in row) row[col] = texts[col];
    for (const col of options.without ?? []) delete row[col];
    return row;
  });
}
