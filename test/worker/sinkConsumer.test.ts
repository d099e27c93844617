/**
 * The worker's delivery guarantees against the real broker, Elasticsearch and Azurite: batch sizes,
 * commit only after a batch is handled, retries that never skip, poison records dead-lettered, and
 * two workers of one group splitting partitions and taking over from each other.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  committedOffsets,
  createTopic,
  deadLetterContainer,
  deadLetters,
  deleteTopic,
  documents,
  eventually,
  gate,
  indicesOf,
  orderEvents,
  produce,
  startWorker,
  testNames,
  workerEnv,
  type RunningWorker,
  type TestNames,
} from './helpers.js';
import { cleanup, testClient } from '../shared/esTestKit.js';
import type { Sink } from '../../src/shared/batch/types.js';
import { deferred } from '../../src/shared/core/async.js';
import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';
import type { SinkDeps } from '../../src/shared/sinks/registry.js';
import { changeEvent, order } from '../helpers/events.js';

const client = testClient();
const used: TestNames[] = [];
const running: RunningWorker[] = [];

async function setup(prefix: string, partitions: number): Promise<TestNames> {
  const names = testNames(prefix);
  used.push(names);
  await createTopic(names.topic, partitions);
  return names;
}

async function start(...args: Parameters<typeof startWorker>): Promise<RunningWorker> {
  const worker = await startWorker(...args);
  running.push(worker);
  return worker;
}

const committed = async (names: TestNames) => Object.fromEntries([...(await committedOffsets(names.group, names.topic))].map(([p, o]) => [p, Number(o)]));

afterAll(async () => {
  await Promise.all(running.map((w) => w.stop()));
  for (const names of used) {
    await deleteTopic(names.topic);
    await cleanup(client, indicesOf(names));
    await deadLetterContainer(names).deleteIfExists();
  }
  await client.close();
});

describe('sink worker', () => {
  it('hands over batches of WORKER_MAX_BATCH_SIZE records, one at a time per partition, and commits each only after it is written', async () => {
    // Prepare: 25 events on one partition before the worker starts; every write waits for a ticket.
    const names = await setup('w_batches', 1);
    const events = orderEvents(1, 25, 1);
    await produce(
      names.topic,
      events.map((e) => e.record),
    );
    const writes = gate();
    const worker = await start(workerEnv(names, { WORKER_MAX_BATCH_SIZE: '10', WORKER_MAX_WAIT_MS: '200' }), (deps) => writes.wrap(deps));
    const offsets = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => String(from + i));

    // Act + Assess: the first batch is in flight and nothing is committed; the partition's next batch waits for it.
    await eventually('first batch in flight', () => (writes.seen.length === 1 ? true : undefined));
    expect(writes.seen[0]).toEqual(offsets(0, 9));
    expect(await committed(names)).toEqual({});
    // One full batch queued behind it (the queue's bound: one batch per partition); fetching waits for room.
    expect(worker.worker.consumers[0]!.metrics.partitions.get(0)).toMatchObject({ queued: 10, inFlight: { firstOffset: '0', lastOffset: '9', attempts: 1 } });

    writes.releaseOne();
    await eventually('offset 10 committed', async () => ((await committed(names))[0] === 10 ? true : undefined));
    await eventually('second batch in flight', () => (writes.seen.length === 2 ? true : undefined));
    expect(writes.seen[1]).toEqual(offsets(10, 19));
    expect(await committed(names)).toEqual({ 0: 10 });

    writes.releaseOne();
    await eventually('offset 20 committed', async () => ((await committed(names))[0] === 20 ? true : undefined));
    writes.releaseOne();
    await eventually('offset 25 committed', async () => ((await committed(names))[0] === 25 ? true : undefined));

    expect(writes.seen.map((b) => b.length)).toEqual([10, 10, 5]);
    expect(worker.batchSizes()).toEqual([10, 10, 5]);
    const docs = await documents(client, names.index);
    expect(docs.size).toBe(25);
    for (const { event } of events) expect(docs.get(String(event.after!.orderid))?.version).toBe(event.source.lsn);
    expect(worker.worker.consumers[0]!.metrics.toJSON()).toMatchObject({
      batches: 3,
      records: { ok: 25, deadLettered: 0, retried: 0 },
      partitions: { '0': { committedOffset: 25 } },
    });

    // A worker started after everything was handled has nothing to commit: its /metrics show the group's committed offset.
    await worker.stop();
    const next = await start(workerEnv(names));
    await eventually(
      'the committed offset in /metrics',
      () => (next.worker.consumers[0]!.metrics.partitions.get(0)?.committedOffset === 25 ? true : undefined),
      20_000,
    );
    expect(next.worker.consumers[0]!.metrics.toJSON()).toMatchObject({ batches: 0, partitions: { '0': { committedOffset: 25, queued: 0, inFlight: null } } });
  });

  it('bounds a batch by WORKER_MAX_BATCH_BYTES too: batches cut at the byte limit, a record larger than it a batch of its own, every offset in order', async () => {
    // Prepare: 12 small events, one large (a 6,000-character city), 12 small, on one partition, before the worker starts.
    const names = await setup('w_bytes', 1);
    const small = orderEvents(1, 24, 1);
    const big = orderEvents(100, 1, 1)[0]!;
    big.event.after!.city = 'x'.repeat(6_000);
    big.record.value = JSON.stringify(big.event);
    const records = [...small.slice(0, 12), big, ...small.slice(12)].map((e) => e.record);
    await produce(names.topic, records);
    const sizes = records.map((r) => Buffer.byteLength(r.value as string) + Buffer.byteLength(r.key ?? ''));
    const limit = 4 * Math.max(...sizes.filter((_, i) => i !== 12));
    expect(sizes[12]).toBeGreaterThan(limit);
    const writes = gate();
    writes.releaseAll();
    await start(workerEnv(names, { WORKER_MAX_BATCH_SIZE: '1000', WORKER_MAX_BATCH_BYTES: String(limit), WORKER_MAX_WAIT_MS: '200' }), (deps) =>
      writes.wrap(deps),
    );

    // Act: everything is handled and committed.
    await eventually('offset 25 committed', async () => ((await committed(names))[0] === 25 ? true : undefined));

    // Assess: in order, none skipped; each batch within the limit unless it is the one large record alone;
    // batches are cut as late as the limit allows (the next record would not have fitted).
    expect(writes.seen.flat()).toEqual(records.map((_, i) => String(i)));
    let offset = 0;
    for (const batch of writes.seen) {
      const bytes = batch.reduce((sum, o) => sum + sizes[Number(o)]!, 0);
      if (batch.length === 1 && batch[0] === '12') expect(bytes).toBeGreaterThan(limit);
      else expect(bytes).toBeLessThanOrEqual(limit);
      offset += batch.length;
      const next = sizes[offset];
      if (next !== undefined && offset !== 12 && batch[0] !== '12') expect(bytes + next).toBeGreaterThan(limit);
    }
    expect(writes.seen).toContainEqual(['12']);
    expect(writes.seen.length).toBeGreaterThanOrEqual(7);
    expect((await documents(client, names.index)).size).toBe(25);
  });

  it('retries a batch Elasticsearch refuses as the same records, commits nothing meanwhile, skips nothing, and lands it once the block is lifted', async () => {
    // Prepare: a first batch lands (and creates the index), then the index refuses writes.
    const names = await setup('w_retry', 1);
    const writes = gate();
    writes.releaseAll();
    const worker = await start(workerEnv(names), (deps) => writes.wrap(deps));
    await produce(
      names.topic,
      orderEvents(1, 5, 1).map((e) => e.record),
    );
    await eventually('first batch committed', async () => ((await committed(names))[0] === 5 ? true : undefined));
    await client.indices.putSettings({ index: names.index, settings: { 'index.blocks.write': true } });

    // Act: five more events; their batch fails on every attempt while the block holds.
    const later = orderEvents(6, 5, 1);
    await produce(
      names.topic,
      later.map((e) => e.record),
    );
    const metrics = worker.worker.consumers[0]!.metrics;
    await eventually('two failed attempts', () => (metrics.batchAttemptsFailed >= 2 ? true : undefined), 60_000);

    // Assess: the same records each time, nothing committed past the failing batch.
    const attempts = writes.seen.slice(1);
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    for (const attempt of attempts) expect(attempt).toEqual(['5', '6', '7', '8', '9']);
    expect(await committed(names)).toEqual({ 0: 5 });
    expect(metrics.records.retried).toBeGreaterThanOrEqual(10);
    expect(metrics.partitions.get(0)?.inFlight).toMatchObject({ firstOffset: '5', lastOffset: '9' });
    // An index write block is a sink failure: every attempt waits the policy's delay (1 s in these tests), never the short one.
    const delays = worker.log.lines.map((l) => /offsets 5\.\.9: .*next attempt in ([\d.]+) s/.exec(String(l.msg))?.[1]).filter((d) => d !== undefined);
    expect(delays.length).toBeGreaterThanOrEqual(2);
    expect(new Set(delays)).toEqual(new Set(['1']));
    expect(metrics.batchAttemptsAwaiting).toBe(0);

    await client.indices.putSettings({ index: names.index, settings: { 'index.blocks.write': null } });
    await eventually('the batch lands and is committed', async () => ((await committed(names))[0] === 10 ? true : undefined), 60_000);
    const docs = await documents(client, names.index);
    expect([...docs.keys()].sort((a, b) => Number(a) - Number(b))).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
    for (const { event } of later) expect(docs.get(String(event.after!.orderid))?.version).toBe(event.source.lsn);
    expect(metrics.records.ok).toBe(10);
  });

  it('a key change whose old key is on a partition behind is retried after a short delay, not the policy delay, as the same records, and lands whole', async () => {
    // Prepare: the key change 10 → 11 of an order (city unchanged, as an unchanged TOAST column) and the next update of 11 on
    // partition 1; the insert of 10 and the change's delete (key-only before image) on partition 0. The policy delay is 5 s.
    const names = await setup('w_awaiting', 2);
    const withoutCity = (id: number, amount: number) => Object.fromEntries(Object.entries(order(id, { amount })).filter(([column]) => column !== 'city'));
    const keepsCity = (event: ChangeEvent, oldKey?: number): ChangeEvent => {
      event.source.unchanged_toast = ['city'];
      if (oldKey !== undefined) event.old_key = { orderid: oldKey };
      return event;
    };
    const oldKey = [changeEvent({ op: 'c', after: order(10, { city: 'Ten Town' }), lsn: 100 }), changeEvent({ op: 'd', before: { orderid: 10 }, lsn: 200 })];
    const newKey = [
      keepsCity(changeEvent({ op: 'c', after: withoutCity(11, 1), lsn: 200 }), 10),
      keepsCity(changeEvent({ op: 'u', after: withoutCity(11, 2), lsn: 300 })),
    ];
    await produce(names.topic, [
      ...oldKey.map((e) => ({ value: JSON.stringify(e), partition: 0 })),
      ...newKey.map((e) => ({ value: JSON.stringify(e), partition: 1 })),
    ]);
    // The new key's partition is written first; the old key's lands between its first attempt and its retry.
    const newKeyTried = deferred<void>();
    const oldKeyWritten = deferred<void>();
    const seen: { partition: string; offsets: string[] }[] = [];
    const ordered = (deps: SinkDeps): SinkDeps => {
      const inner = deps.sink;
      const sink: Sink<unknown> = {
        name: inner.name,
        prepare: (event, record) => inner.prepare(event, record),
        write: async (records, batch, context) => {
          seen.push({ partition: batch.partitionId, offsets: records.map((r) => r.record.offset) });
          if (batch.partitionId === '0') {
            await newKeyTried.promise;
            const failures = await inner.write(records, batch, context);
            oldKeyWritten.resolve();
            return failures;
          }
          if (seen.filter((b) => b.partition === '1').length > 1) await oldKeyWritten.promise;
          try {
            return await inner.write(records, batch, context);
          } finally {
            newKeyTried.resolve();
          }
        },
      };
      return { ...deps, sink };
    };

    // Act
    const worker = await start(workerEnv(names, { CDC_RETRY_MIN_INTERVAL_SECONDS: '5', CDC_RETRY_MAX_INTERVAL_SECONDS: '5' }), ordered);
    await eventually('both partitions committed', async () => {
      const offsets = await committed(names);
      return offsets[0] === 2 && offsets[1] === 2 ? true : undefined;
    });

    // Assess: one failed attempt of the new key's batch, which only waited for partition 0: retried after 0.1 s, not 5 s.
    const metrics = worker.worker.consumers[0]!.metrics;
    expect(metrics.toJSON()).toMatchObject({ batches: 2, batchAttemptsFailed: 1, batchAttemptsAwaiting: 1, records: { ok: 4, deadLettered: 0, retried: 2 } });
    const retries = worker.log.lines.map((l) => String(l.msg)).filter((m) => m.includes('must be retried'));
    expect(retries).toEqual([
      expect.stringMatching(/partition 1 offsets 0\.\.1: 2 of 2 records must be retried \(attempt 1, waiting for another partition\); next attempt in 0\.1 s/),
    ]);
    // The same records on the retry, nothing skipped; the old key's batch once.
    expect(seen.filter((b) => b.partition === '1').map((b) => b.offsets)).toEqual([
      ['0', '1'],
      ['0', '1'],
    ]);
    expect(seen.filter((b) => b.partition === '0').map((b) => b.offsets)).toEqual([['0', '1']]);
    const docs = await documents(client, names.index);
    expect(docs.get('11')).toMatchObject({ version: 300, source: { orderid: 11, amount: 2, city: 'Ten Town', __deleted: false } });
    expect(docs.get('11')?.source).not.toHaveProperty('__unchanged_toast');
    expect(docs.get('10')).toMatchObject({ version: 200, source: { city: 'Ten Town', __deleted: true } });
    expect(await deadLetters(deadLetterContainer(names))).toEqual([]);
  });

  it('a partition whose batch waits for another one does not starve it: at the fetch bounds its queue is shed and read again, and both land whole', async () => {
    // Prepare: on partition 1 the key change 10 → 11 (city unchanged, as an unchanged TOAST column) comes first, then 300 orders;
    // on partition 0, 300 orders come before the insert of 10 and the change's delete. Batches of 5: the fetch bounds are
    // 2 × 5 records per partition, 20 in all; a fetch brings far more. Partition 0's batches are slowed, so partition 1's first batch waits for it while
    // its own queue fills the bounds: the client pauses the whole stream, and without shedding partition 0 would never get
    // the delete it is waiting for (found by bench:e2e after a broker stop: the worker idle, one batch retried 278 times).
    const names = await setup('w_shed', 2);
    const withoutCity = (id: number) => Object.fromEntries(Object.entries(order(id, { amount: 1 })).filter(([column]) => column !== 'city'));
    const keyChange = changeEvent({ op: 'c', after: withoutCity(11), lsn: 6000 });
    keyChange.source.unchanged_toast = ['city'];
    keyChange.old_key = { orderid: 10 };
    // 40 KB each, so one fetch (1 MB per partition) brings only some of a partition's records.
    const note = 'n'.repeat(40_000);
    const orders = (from: number, lsn: number) =>
      Array.from({ length: 300 }, (_, i) => changeEvent({ op: 'c', after: { ...order(from + i), note }, lsn: lsn + i }));
    const partition0 = [
      ...orders(1000, 1000),
      changeEvent({ op: 'c', after: order(10, { city: 'Ten Town' }), lsn: 5000 }),
      changeEvent({ op: 'd', before: { orderid: 10 }, lsn: 6000 }),
    ];
    const partition1 = [keyChange, ...orders(2000, 7000)];
    const out = [
      ...partition0.map((e) => ({ value: JSON.stringify(e), partition: 0 })),
      ...partition1.map((e) => ({ value: JSON.stringify(e), partition: 1 })),
    ];
    // In requests of 20 records (under the broker's request size).
    for (let i = 0; i < out.length; i += 20) await produce(names.topic, out.slice(i, i + 20));
    const handed: Record<string, string[][]> = { '0': [], '1': [] };
    const slowed = (deps: SinkDeps): SinkDeps => {
      const inner = deps.sink;
      const sink: Sink<unknown> = {
        name: inner.name,
        prepare: (event, record) => inner.prepare(event, record),
        write: async (records, batch, context) => {
          handed[batch.partitionId]!.push(records.map((r) => r.record.offset));
          if (batch.partitionId === '0') await new Promise((resolve) => setTimeout(resolve, 40));
          return inner.write(records, batch, context);
        },
      };
      return { ...deps, sink };
    };

    // Act
    const worker = await start(workerEnv(names, { WORKER_MAX_BATCH_SIZE: '5', WORKER_MAX_WAIT_MS: '0' }), slowed);
    await eventually(
      'both partitions committed to their end',
      async () => {
        const offsets = await committed(names);
        return offsets[0] === partition0.length && offsets[1] === partition1.length ? true : undefined;
      },
      60_000,
    );

    // Assess: partition 1 waited, was shed and read again; every offset of each partition was handed over, first in order,
    // none skipped (a retry that only waits hands over again the records still waiting).
    const metrics = worker.worker.consumers[0]!.metrics.toJSON();
    expect(metrics.batchAttemptsAwaiting).toBeGreaterThan(0);
    expect(metrics.shedRecords).toBeGreaterThan(0);
    expect(metrics.refetches).toBeGreaterThan(0);
    expect(worker.log.lines.map((l) => String(l.msg))).toContainEqual(
      expect.stringMatching(/partition 1: its batch waits for another partition .* records from offset \d+ are dropped and read again/),
    );
    for (const [partition, events] of [
      ['0', partition0],
      ['1', partition1],
    ] as const) {
      const firstHandedOver = [...new Set(handed[partition]!.flat())];
      expect(firstHandedOver).toEqual(events.map((_, i) => String(i)));
    }
    // Partition 1's first batch: the key change waits, the four orders after it are written; its retries hand over the key
    // change alone.
    expect(handed['1']![0]).toEqual(['0', '1', '2', '3', '4']);
    expect(handed['1']![1]).toEqual(['0']);
    const docs = await documents(client, names.index);
    expect(docs.get('11')).toMatchObject({ version: 6000, source: { orderid: 11, city: 'Ten Town', __deleted: false } });
    expect(docs.get('10')).toMatchObject({ version: 6000, source: { __deleted: true } });
    expect([...docs.keys()].filter((id) => Number(id) >= 1000)).toHaveLength(600);
    expect(await deadLetters(deadLetterContainer(names))).toEqual([]);
  });

  it('dead-letters a poison record (not JSON) with its position, headers and original bytes to Azurite, while the rest lands and is committed', async () => {
    // Prepare
    const names = await setup('w_poison', 2);
    const [a, b, c] = orderEvents(1, 3, 2);
    const poison = Buffer.from('{"truncated');
    await produce(names.topic, [
      { ...a!.record, partition: 0 },
      { value: poison, partition: 0, headers: { origin: 'test' } },
      { ...b!.record, partition: 0 },
      { ...c!.record, partition: 1 },
    ]);

    // Act
    const worker = await start(workerEnv(names));
    await eventually('all committed', async () => {
      const offsets = await committed(names);
      return offsets[0] === 3 && offsets[1] === 1 ? true : undefined;
    });

    // Assess
    expect([...(await documents(client, names.index)).keys()].sort()).toEqual(['1', '2', '3']);
    const letters = await deadLetters(deadLetterContainer(names));
    expect(letters).toHaveLength(1);
    const [{ name, doc }] = letters as [(typeof letters)[number]];
    expect(name.startsWith(`127.0.0.1/${names.topic}/${names.group}/elasticsearchSink/0/`)).toBe(true);
    expect(doc).toMatchObject({
      functionName: 'elasticsearchSink',
      namespace: '127.0.0.1',
      consumerGroup: names.group,
      eventHubName: names.topic,
      partitionId: '0',
      offset: '1',
      sequenceNumber: '1',
      bodyType: 'buffer',
      properties: { origin: 'test' },
    });
    expect(doc.enqueuedTimeUtc).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(doc.reason).toMatch(/not JSON/);
    expect(Buffer.from(doc.body, 'base64').equals(poison)).toBe(true);
    expect(worker.worker.consumers[0]!.metrics.records).toMatchObject({ ok: 3, deadLettered: 1, retried: 0 });
  });

  it('two workers in one group split four partitions; when one leaves with batches in flight, the survivor takes them over and nothing is lost', async () => {
    // Prepare: worker A alone, then worker B joins; B's writes are held, so its batches stay in flight.
    const names = await setup('w_group', 4);
    const a = await start(workerEnv(names));
    await eventually('A has all four partitions', () => (a.assigned().length === 4 ? true : undefined));
    const held = gate();
    const b = await start(workerEnv(names, { WORKER_SHUTDOWN_TIMEOUT_MS: '0' }), (deps) => held.wrap(deps));
    await eventually('A and B have two partitions each', () => (a.assigned().length === 2 && b.assigned().length === 2 ? true : undefined));
    const ofB = b.assigned();
    expect([...a.assigned(), ...ofB].sort()).toEqual([0, 1, 2, 3]);

    // Act: ten events per partition; A's land, B's wait at the gate; then B stops (abandoning them).
    const events = orderEvents(1, 40, 4);
    await produce(
      names.topic,
      events.map((e) => e.record),
    );
    await eventually('A committed its partitions', async () => {
      const offsets = await committed(names);
      return a.assigned().every((p) => offsets[p] === 10) ? true : undefined;
    });
    await eventually('B has a batch in flight on each of its partitions', () => (held.seen.length >= 2 ? true : undefined));
    await b.stop();
    held.releaseAll(); // B's late writes may land now: they are not committed.
    const offsetsAfterB = await committed(names);
    for (const p of ofB) expect(offsetsAfterB[p]).toBeUndefined();
    const metricsB = b.worker.consumers[0]!.metrics;
    await eventually("B's late batches end uncommitted", () => (metricsB.abandonedBatches >= 2 ? true : undefined));

    // Assess: A takes over B's partitions from their last commit (none) and handles everything.
    await eventually('A has all four partitions again', () => (a.assigned().length === 4 ? true : undefined), 60_000);
    await eventually('every partition committed to its end', async () => {
      const offsets = await committed(names);
      return [0, 1, 2, 3].every((p) => offsets[p] === 10) ? true : undefined;
    });
    const docs = await documents(client, names.index);
    expect(docs.size).toBe(40);
    for (const { event } of events) expect(docs.get(String(event.after!.orderid))?.version).toBe(event.source.lsn);
    expect(a.worker.consumers[0]!.metrics.rebalances).toBeGreaterThanOrEqual(2);
  });

  it('across a rebalance, a kept partition finishes and commits its batch in flight without handling it twice; the revoked one is not committed by the old owner', async () => {
    // Prepare: A holds a batch in flight on each of two partitions when B joins the group.
    const names = await setup('w_rebalance', 2);
    const events = orderEvents(1, 20, 2);
    await produce(
      names.topic,
      events.map((e) => e.record),
    );
    const held = gate();
    const a = await start(workerEnv(names), (deps) => held.wrap(deps));
    await eventually('A has a batch in flight on both partitions', () => (held.seen.length === 2 ? true : undefined));

    // Act: B joins; A keeps one partition and loses the other, with both batches still held.
    const b = await start(workerEnv(names));
    await eventually('one partition each', () => (a.assigned().length === 1 && b.assigned().length === 1 ? true : undefined));
    const [kept] = a.assigned() as [number];
    const lost = 1 - kept;
    await eventually('B committed the partition it took over', async () => ((await committed(names))[lost] === 10 ? true : undefined));
    // A reads its kept partition again from the last commit (a fresh stream): those records are recognised, not queued again.
    const metricsA = a.worker.consumers[0]!.metrics;
    await eventually('A dropped the re-read records of its kept partition', () => (metricsA.redelivered >= 10 ? true : undefined));
    expect(await committed(names)).toEqual({ [lost]: 10 });
    held.releaseAll();

    // Assess
    await eventually('the kept partition committed by A', async () => ((await committed(names))[kept] === 10 ? true : undefined));
    await eventually("A's batch of the lost partition abandoned", () => (metricsA.abandonedBatches >= 1 ? true : undefined));
    expect(held.seen).toHaveLength(2);
    expect(metricsA.batches).toBe(2);
    expect(metricsA.partitions.get(kept)).toMatchObject({ committedOffset: 10, queued: 0 });
    const docs = await documents(client, names.index);
    expect(docs.size).toBe(20);
    for (const { event } of events) expect(docs.get(String(event.after!.orderid))?.version).toBe(event.source.lsn);
  });
});
