/**
 * End to end: SQL on the real PostgreSQL → the reader → Kafka → batches shaped as the Event Hubs
 * trigger delivers them (one per Kafka partition, host-parsed bodies, offsets) → the
 * elasticsearchSink and changeHistory handlers → real Elasticsearch. The demos'
 * bank.holding workload (REPLICA IDENTITY FULL) answers its questions at the end.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type pg from 'pg';
import { MemoryDeadLetterStore } from '../../src/shared/deadletter/memoryDeadLetterStore.js';
import { ElasticsearchSink } from '../../src/shared/elasticsearch/elasticsearchSink.js';
import { createEventHubBatchHandler, type EventHubBatchHandler } from '../../src/functions/host/eventHubBatchHandler.js';
import { lazy } from '../../src/shared/core/lazy.js';
import { ElasticsearchHistorySink } from '../../src/shared/history/historySink.js';
import { mostSoldStock, stockTypeChangesOfUser } from '../../src/shared/history/queries.js';
import { DEFAULT_ROUTES, Router, type RoutesConfig } from '../../src/shared/routing/routes.js';
import { cleanup as cleanupReader, pgClient, readerEnv, startReader, TopicCollector, uniqueName, type RunningReader } from '../reader/helpers.js';
import { cleanup as cleanupEs, testClient } from '../shared/esTestKit.js';
import { triggerBatch } from './triggerBatch.js';

const name = uniqueName('e2e_sinks');
const bank = `${name}_bank`;
const index = name.replaceAll('_', '-');
const historyIndex = `${index}-history`;
const client = testClient();
let c: pg.Client;
let reader: RunningReader;
let topic: TopicCollector;
let delivered = 0;
let esHandler: EventHubBatchHandler;
let historyHandler: EventHubBatchHandler;
const deadLetters = new MemoryDeadLetterStore();

/** Delivers what arrived on the topic since the last call, per partition, to both handlers. */
async function deliver(): Promise<void> {
  const items = topic.items.slice(delivered);
  delivered += items.length;
  const partitions = new Map<number, typeof items>();
  for (const item of items) partitions.set(item.partition, [...(partitions.get(item.partition) ?? []), item]);
  for (const [partition, list] of partitions) {
    // As the trigger delivers them with dataType 'binary'.
    const bodies = list.map((i) => Buffer.from(i.raw));
    const first = Number(list[0]?.offset ?? 0n);
    for (const [handler, functionName] of [
      [esHandler, 'elasticsearchSink'],
      [historyHandler, 'changeHistory'],
    ] as const) {
      const { messages, context } = triggerBatch(bodies, { partitionId: String(partition), firstOffset: first, functionName });
      const report = await handler(messages, context);
      expect(report.retried).toBe(0);
    }
  }
  await client.indices.refresh({ index: [index, historyIndex] });
}

/**
 * A time between two phases of the workload. Commit times reach the sinks in milliseconds, so the
 * phases are kept 5 ms apart on each side of the stamp (part of the workload, not a wait for a result).
 */
async function stamp(): Promise<string> {
  const { rows } = await c.query<{ t: Date }>('SELECT pg_sleep(0.005), clock_timestamp() AS t, pg_sleep(0.005)');
  return rows[0]!.t.toISOString();
}

beforeAll(async () => {
  c = await pgClient();
  await c.query(`CREATE SCHEMA ${bank};
    CREATE TABLE ${bank}.holding (holding_id int, user_id int, holding_stock varchar(8), holding_quantity int, datetime_created timestamp, datetime_updated timestamp, primary key (holding_id));
    ALTER TABLE ${bank}.holding REPLICA IDENTITY FULL;`);
  reader = await startReader(readerEnv(name, { CDC_TABLES: `${bank}.holding`, CDC_SNAPSHOT_MODE: 'never' }));
  topic = await TopicCollector.start([`${name}_events`]);
  const routes: RoutesConfig = {
    [`${bank}.holding`]: { ...DEFAULT_ROUTES['bank.holding'], elasticsearch: { ...DEFAULT_ROUTES['bank.holding']!.elasticsearch!, index } },
  };
  const router = new Router(routes);
  const es = new ElasticsearchSink({ client, router, templates: { replicas: 0 }, controlIndex: `${index}-control` });
  const history = new ElasticsearchHistorySink({ client, router, index: historyIndex, replicas: 0 });
  esHandler = createEventHubBatchHandler(lazy(() => ({ sink: es, deadLetters })));
  historyHandler = createEventHubBatchHandler(lazy(() => ({ sink: history, deadLetters })));
}, 90_000);

afterAll(async () => {
  await reader?.stop();
  await topic?.close();
  await cleanupReader(c, name, [bank]);
  await c.end();
  await cleanupEs(client, [index, historyIndex, `${index}-control`]);
  await client.indices.deleteIndexTemplate({ name: `cdc-history-${historyIndex}` }).catch(() => undefined);
  await client.close();
});

describe('PostgreSQL → reader → Kafka → sink handlers → Elasticsearch', () => {
  const windows: string[] = [];

  it('keeps the Elasticsearch index equal to the table through the demo workload', async () => {
    const sql = async (text: string) => c.query(text.replaceAll('bank.', `${bank}.`));
    windows.push(await stamp());
    await sql(`insert into bank.holding values (1000, 1, 'VFIAX', 10, now(), now())`);
    await sql(`insert into bank.holding values (1001, 2, 'SP500', 1, now(), now())`);
    await sql(`insert into bank.holding values (1002, 3, 'SP500', 1, now(), now())`);
    await sql(`update bank.holding set holding_quantity = 100 where holding_id=1000`);
    windows.push(await stamp());
    await sql(`delete from bank.holding where user_id = 3`);
    await sql(`delete from bank.holding where user_id = 2`);
    await sql(`insert into bank.holding values (1003, 3, 'VTSAX', 100, now(), now())`);
    await sql(`update bank.holding set holding_quantity = 10 where holding_id=1003`);
    windows.push(await stamp());
    await sql(`update bank.holding set holding_stock = 'VTSAX' where holding_id=1000`);
    await sql(`update bank.holding set holding_stock = 'SP500' where holding_id=1003`);
    await sql(`update bank.holding set holding_stock = 'SP500', holding_quantity = 5 where holding_id=1000`);
    windows.push(await stamp());

    await topic.waitFor('11 holding events', (events) => events.length >= 11);
    await deliver();
    // The whole stream delivered again (a restart before the checkpoint): nothing changes.
    delivered = 0;
    await deliver();

    const { rows } = await c.query<{ holding_id: number; holding_stock: string; holding_quantity: number }>(
      `SELECT holding_id, holding_stock, holding_quantity FROM ${bank}.holding ORDER BY holding_id`,
    );
    const live = await client.search<{ holding_id: number; holding_stock: string; holding_quantity: number }>({
      index: `${index}-live`,
      sort: ['holding_id'],
      size: 100,
    });
    expect(
      live.hits.hits.map((h) => ({
        holding_id: h._source?.holding_id,
        holding_stock: h._source?.holding_stock,
        holding_quantity: h._source?.holding_quantity,
      })),
    ).toEqual(rows);
    expect(deadLetters.documents.size).toBe(0);
  });

  it('answers the questions of the per-field history demo from the change history', async () => {
    const table = `${bank}.holding`;
    expect(await stockTypeChangesOfUser(client, historyIndex, 1, table)).toBe(2);
    expect(await stockTypeChangesOfUser(client, historyIndex, 2, table)).toBe(1);
    expect(await stockTypeChangesOfUser(client, historyIndex, 3, table)).toBe(2);
    expect(await mostSoldStock(client, historyIndex, windows[1]!, windows[2]!, table)).toEqual({ stock: 'SP500', count: 2 });
    expect(await mostSoldStock(client, historyIndex, windows[2]!, windows[3]!, table)).toEqual({ stock: 'VTSAX', count: 2 });
  });
});
