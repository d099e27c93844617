import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { BlobServiceClient } from '@azure/storage-blob';
import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';
import { cleanup, eventually, pgClient, readerEnv, startReader, TopicCollector, uniqueName } from './helpers.js';
import { serviceEnv } from '../helpers/services.js';
import { loadConfig } from '../../src/reader/config.js';
import { KafkaPublisher } from '../../src/reader/publish/kafkaPublisher.js';
import type { Publisher } from '../../src/reader/publish/publisher.js';

describe('reader: large transactions, oversized events, heartbeats', () => {
  let c: pg.Client;
  const names: { name: string; schema: string }[] = [];
  beforeAll(async () => {
    c = await pgClient();
  });
  afterAll(async () => {
    for (const n of names) await cleanup(c, n.name, [n.schema]);
    await c.end();
  });

  test('a 200k-row transaction streams through with in-flight bytes bounded', async () => {
    const name = uniqueName('rd_big');
    const schema = `${name}_s`;
    names.push({ name, schema });
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.t (id int PRIMARY KEY, payload text)`);
    const bound = 2 * 1024 * 1024;
    const env = readerEnv(name, { CDC_TABLES: `${schema}.t`, CDC_SNAPSHOT_MODE: 'never', CDC_MAX_INFLIGHT_BYTES: String(bound) });
    // A broker slower than decoding (as in production), so the bound is reached and reading pauses
    // on every machine: a fast local broker on an idle machine may otherwise never fill it.
    const kafka = await KafkaPublisher.create(loadConfig(env).kafka);
    const slowBroker: Publisher = {
      send: async (records) => {
        await new Promise((resolve) => setTimeout(resolve, 2));
        await kafka.send(records);
      },
      close: () => kafka.close(),
    };
    const r = await startReader(env, 'streaming', { publisher: slowBroker });
    const topic = await TopicCollector.start([`${name}_events`], { keysOnly: true });
    const rows = 200_000;
    await c.query(`INSERT INTO ${schema}.t SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, ${rows}) g`);
    await eventually('every row of the transaction on the topic', () => (topic.keys.size >= rows ? true : undefined), 240_000, 250);
    const peak = r.reader.peakBytesInFlight;
    const pendingPeak = r.reader.peakPendingMessages;
    await r.stop();
    await slowBroker.close();
    await topic.close();
    expect(topic.keys.size).toBe(rows);
    // The reader never held more than the bound (plus one event) of the transaction.
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(bound + 4096);
    // Reading really pauses: decoded messages waiting behind the paused socket stay a few socket chunks' worth.
    expect(pendingPeak).toBeGreaterThan(0);
    expect(pendingPeak).toBeLessThan(5_000);
  }, 300_000);

  test('an event too large for the hub is stored as a claim check, with a pointer on the hub', async () => {
    const name = uniqueName('rd_dlq');
    const schema = `${name}_s`;
    names.push({ name, schema });
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.t (id int PRIMARY KEY, doc text)`);
    const r = await startReader(readerEnv(name, { CDC_TABLES: `${schema}.t`, CDC_SNAPSHOT_MODE: 'never', KAFKA_MAX_MESSAGE_BYTES: '8192' }));
    const topic = await TopicCollector.start([`${name}_events`]);
    const big = 'z'.repeat(20_000);
    await c.query(`INSERT INTO ${schema}.t VALUES (1, '${big}'), (2, 'small')`);
    const events = await topic.waitFor('two events', (es) => es.length >= 2);
    expect(r.reader.metrics.toJSON()).toMatchObject({ claimChecked: 1 });
    await r.stop();
    await topic.close();
    const [pointer, small] = events;
    expect(small!.after).toEqual({ id: 2, doc: 'small' });
    expect(pointer!.after).toBeNull();
    expect(pointer!.key).toEqual({ id: 1 });
    expect(pointer!.op).toBe('c');
    expect(pointer!.deadletter).toMatchObject({ container: r.config.claimCheck.container, bytes: expect.any(Number) as unknown });
    const blob = BlobServiceClient.fromConnectionString(serviceEnv().azureStorageConnectionString)
      .getContainerClient(pointer!.deadletter!.container)
      .getBlobClient(pointer!.deadletter!.blob);
    const full = JSON.parse((await blob.downloadToBuffer()).toString()) as ChangeEvent;
    expect(full.after).toEqual({ id: 1, doc: big });
    expect(full.source.lsn).toBe(pointer!.source.lsn);
    await BlobServiceClient.fromConnectionString(serviceEnv().azureStorageConnectionString).getContainerClient(pointer!.deadletter!.container).deleteIfExists();
  });

  test('heartbeat: the slot advances while only other tables write', async () => {
    const name = uniqueName('rd_hb');
    const schema = `${name}_s`;
    names.push({ name, schema });
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.captured (id int PRIMARY KEY); CREATE TABLE ${schema}.other (id int)`);
    const r = await startReader(readerEnv(name, { CDC_TABLES: `${schema}.captured`, CDC_SNAPSHOT_MODE: 'never', CDC_HEARTBEAT_INTERVAL_MS: '200' }));
    await c.query(`INSERT INTO ${schema}.other SELECT generate_series(1, 5000)`);
    // The insert position: the write position (pg_current_wal_lsn) can lag a commit on these synchronous_commit = off servers.
    const after = (await c.query<{ l: string }>("SELECT (pg_current_wal_insert_lsn() - '0/0')::text AS l")).rows[0]!.l;
    await eventually(
      'slot confirmed past the other table’s writes',
      async () => {
        const s = await c.query<{ confirmed: string }>(
          "SELECT (confirmed_flush_lsn - '0/0')::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1",
          [name],
        );
        return BigInt(s.rows[0]!.confirmed) > BigInt(after) ? true : undefined;
      },
      20_000,
    );
    expect(r.reader.metrics.changes).toBe(0);
    await r.stop();
  });

  test('a quiet database does not pin WAL by default: only unpublished tables write, and confirmed_flush_lsn advances', async () => {
    const name = uniqueName('rd_quiet');
    const schema = `${name}_s`;
    names.push({ name, schema });
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.captured (id int PRIMARY KEY); CREATE TABLE ${schema}.other (id int)`);
    // Default settings: no heartbeat messages (CDC_HEARTBEAT_INTERVAL_MS unset).
    const env = readerEnv(name, { CDC_TABLES: `${schema}.captured`, CDC_SNAPSHOT_MODE: 'never' });
    expect(env.CDC_HEARTBEAT_INTERVAL_MS).toBeUndefined();
    const r = await startReader(env);
    try {
      const confirmed = async () =>
        BigInt(
          (
            await c.query<{ confirmed: string }>("SELECT (confirmed_flush_lsn - '0/0')::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1", [
              name,
            ])
          ).rows[0]!.confirmed,
        );
      const start = await confirmed();
      for (let i = 0; i < 5; i++) await c.query(`INSERT INTO ${schema}.other SELECT generate_series(1, 1000)`);
      const after = BigInt((await c.query<{ l: string }>("SELECT (pg_current_wal_insert_lsn() - '0/0')::text AS l")).rows[0]!.l);
      expect(after).toBeGreaterThan(start);
      await eventually('slot confirmed past the unpublished table’s writes', async () => ((await confirmed()) >= after ? true : undefined), 60_000);
      expect(r.reader.metrics.changes).toBe(0);
    } finally {
      await r.stop();
    }
  });
});
