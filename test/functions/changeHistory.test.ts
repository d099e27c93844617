/**
 * The changeHistory handler on the bank.holding workload of the Debezium per-field history demo (REPLICA IDENTITY FULL),
 * then its questions answered by the shipped Elasticsearch queries against real Elasticsearch.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { MemoryDeadLetterStore } from '../../src/shared/deadletter/memoryDeadLetterStore.js';
import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';
import { createEventHubBatchHandler } from '../../src/functions/host/eventHubBatchHandler.js';
import { lazy } from '../../src/shared/core/lazy.js';
import { ElasticsearchHistorySink } from '../../src/shared/history/historySink.js';
import { changeCount, mostSoldStock, stockTypeChangesOfUser } from '../../src/shared/history/queries.js';
import { DEFAULT_ROUTES, Router } from '../../src/shared/routing/routes.js';
import { cleanup, testClient, uniqueIndex } from '../shared/esTestKit.js';
import { changeEvent, hostBody } from '../helpers/events.js';
import { triggerBatch } from './triggerBatch.js';

const client = testClient();
const index = uniqueIndex('history');
type Holding = { holding_id: number; user_id: number; holding_stock: string; holding_quantity: number };

/** Replays SQL on bank.holding (REPLICA IDENTITY FULL) as the reader would emit it. */
class HoldingWorkload {
  readonly rows = new Map<number, Holding>();
  readonly events: ChangeEvent[] = [];
  #lsn = 1_000_000;
  constructor(private day = 1) {}
  at(day: number) {
    this.day = day;
    return this;
  }
  #emit(op: 'c' | 'u' | 'd', id: number, before: Holding | null, after: Holding | null) {
    this.#lsn += 64;
    this.events.push(changeEvent({ table: 'bank.holding', op, before, after, key: { holding_id: id }, lsn: this.#lsn, tsMs: Date.UTC(2021, 5, this.day, 12) }));
  }
  insert(id: number, user: number, stock: string, quantity: number) {
    const row = { holding_id: id, user_id: user, holding_stock: stock, holding_quantity: quantity };
    this.rows.set(id, row);
    this.#emit('c', id, null, row);
  }
  update(id: number, set: Partial<Holding>) {
    const before = this.rows.get(id)!;
    const after = { ...before, ...set };
    this.rows.set(id, after);
    this.#emit('u', id, before, after);
  }
  deleteWhere(pred: (h: Holding) => boolean) {
    for (const [id, row] of [...this.rows]) {
      if (!pred(row)) continue;
      this.rows.delete(id);
      this.#emit('d', id, row, null);
    }
  }
}

function workload(): HoldingWorkload {
  const w = new HoldingWorkload();
  // The demo's SQL script ...
  w.at(1).insert(1000, 1, 'VFIAX', 10);
  w.insert(1001, 2, 'SP500', 1);
  w.insert(1002, 3, 'SP500', 1);
  w.update(1000, { holding_quantity: 100 });
  w.at(2).deleteWhere((h) => h.user_id === 3);
  w.deleteWhere((h) => h.user_id === 2);
  w.insert(1003, 3, 'VTSAX', 100);
  w.update(1003, { holding_quantity: 10 });
  // ... plus stock-type changes, so that the questions have interesting answers.
  w.at(3).update(1000, { holding_stock: 'VTSAX' });
  w.update(1003, { holding_stock: 'SP500' });
  w.at(4).update(1000, { holding_stock: 'SP500', holding_quantity: 5 });
  w.update(1000, { holding_stock: 'SP500' }); // no-op update: no history row
  return w;
}

beforeAll(async () => {
  const sink = new ElasticsearchHistorySink({ client, router: new Router(DEFAULT_ROUTES), index, replicas: 0, bulk: { maxAttempts: 2, backoffMs: 10 } });
  const handler = createEventHubBatchHandler(lazy(() => ({ sink, deadLetters: new MemoryDeadLetterStore() })));
  const events = workload().events.map((e) => hostBody(e));
  // Two batches on one partition, the second redelivered (as after a failed invocation): no double counts.
  const first = triggerBatch(events.slice(0, 7), { functionName: 'changeHistory', firstOffset: 0 });
  const second = triggerBatch(events.slice(7), { functionName: 'changeHistory', firstOffset: 7 * 512, firstSequenceNumber: 24 });
  await handler(first.messages, first.context);
  await handler(second.messages, second.context);
  const report = await handler(second.messages, second.context);
  expect(report.retried).toBe(0);
  await client.indices.refresh({ index });
});
afterAll(async () => {
  await cleanup(client, [index]);
  await client.indices.deleteIndexTemplate({ name: `cdc-history-${index}` }).catch(() => undefined);
  await client.close();
});

describe('change history in Elasticsearch, source-document questions', () => {
  it('writes one row per changed column with old and new values', async () => {
    const rows = await client.search<Record<string, unknown>>({
      index,
      size: 100,
      query: { term: { KeyText: '1000' } },
      sort: [{ Lsn: 'asc' }, { Column: 'asc' }],
    });
    expect(rows.hits.hits.map((h) => [h._source?.Op, h._source?.Column, h._source?.OldValue, h._source?.NewValue])).toEqual([
      ['c', 'holding_quantity', null, '10'],
      ['c', 'holding_stock', null, 'VFIAX'],
      ['u', 'holding_quantity', '10', '100'],
      ['u', 'holding_stock', 'VFIAX', 'VTSAX'],
      ['u', 'holding_quantity', '100', '5'],
      ['u', 'holding_stock', 'VTSAX', 'SP500'],
    ]);
  });

  it('answers: how many times did user X change (or delete) stock type', async () => {
    expect(await stockTypeChangesOfUser(client, index, 1)).toBe(2); // VFIAX→VTSAX→SP500
    expect(await stockTypeChangesOfUser(client, index, 2)).toBe(1); // delete of SP500
    expect(await stockTypeChangesOfUser(client, index, 3)).toBe(2); // delete of 1002, VTSAX→SP500 on 1003
    expect(await stockTypeChangesOfUser(client, index, 4)).toBe(0);
  });

  it('answers: how many times did user X change stock quantity (the "exercise for the reader")', async () => {
    const quantityChanges = (user: number) => changeCount(client, index, 'bank.holding', 'holding_quantity', { user_id: user });
    expect(await quantityChanges(1)).toBe(2); // 10→100, 100→5
    expect(await quantityChanges(2)).toBe(1); // delete
    expect(await quantityChanges(3)).toBe(2); // delete of 1002, 100→10 on 1003
  });

  it('answers: most commonly sold stock between two dates', async () => {
    expect(await mostSoldStock(client, index, '2021-06-02T00:00:00Z', '2021-06-02T23:59:59Z')).toEqual({ stock: 'SP500', count: 2 });
    expect(await mostSoldStock(client, index, '2021-06-03T00:00:00Z', '2021-06-04T23:59:59Z')).toEqual({ stock: 'VTSAX', count: 2 });
    expect(await mostSoldStock(client, index, '2021-07-01T00:00:00Z', '2021-07-02T00:00:00Z')).toBeUndefined();
  });
});

describe('change history across tables', () => {
  it('accepts the same key column as a number in one table and as text in another', async () => {
    const sink = new ElasticsearchHistorySink({ client, router: new Router({ '*': {} }), index, replicas: 0 });
    const handler = createEventHubBatchHandler(lazy(() => ({ sink, deadLetters: new MemoryDeadLetterStore() })));
    const a = changeEvent({ table: 'public.a', op: 'c', key: { id: 1 }, after: { id: 1, v: 1, ctx: { nested: true } }, lsn: 10 });
    const b = changeEvent({ table: 'public.b', op: 'c', key: { id: 'x-1' }, after: { id: 'x-1', v: 'text' }, lsn: 20 });
    const { messages, context } = triggerBatch([hostBody(a, 'buffer'), hostBody(b, 'buffer')], { functionName: 'changeHistory', partitionId: '5' });
    const report = await handler(messages, context);
    expect(report).toMatchObject({ ok: 2, deadLettered: 0 });
  });
});
