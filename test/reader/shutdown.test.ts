/**
 * A stop (SIGTERM) ends within its bound in every phase, whatever the broker does, and acknowledges
 * nothing the broker did not confirm.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';
import type pg from 'pg';
import { loadConfig } from '../../src/reader/config.js';
import { KafkaPublisher } from '../../src/reader/publish/kafkaPublisher.js';
import {
  cleanup,
  closedPort,
  eventually,
  pgClient,
  readerEnv,
  slotInactive,
  spawnReader,
  startReader,
  SwitchableBroker,
  TopicCollector,
  uniqueName,
} from './helpers.js';
import type { RunningReader } from './helpers.js';

/** How long the reader may wait for the broker on a stop in these tests (the default is 30 s). */
const BOUND_MS = 3_000;

/** Stops the reader; 'ended' if stop() and run() returned within the bound plus a generous margin. */
async function stopWithin(r: RunningReader): Promise<'ended' | 'still running'> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'still running'>((resolve) => (timer = setTimeout(() => resolve('still running'), BOUND_MS + 30_000)));
  const ended = (async () => {
    await r.reader.stop();
    await r.run;
    return 'ended' as const;
  })();
  try {
    return await Promise.race([ended, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

describe('reader: bounded shutdown', () => {
  const schema = uniqueName('rd_stop_s');
  const names: string[] = [];
  let c: pg.Client;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.t (id int PRIMARY KEY, v text);
      INSERT INTO ${schema}.t SELECT g, 'seed' FROM generate_series(1, 3000) g`);
  });
  afterAll(async () => {
    for (const n of names) await cleanup(c, n);
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  const envFor = (extra: Record<string, string>) => {
    const name = uniqueName('rd_stop');
    names.push(name);
    return readerEnv(name, { CDC_TABLES: `${schema}.t`, ...extra });
  };
  const slot = async (name: string) =>
    (
      await c.query<{ confirmed: string | null }>("SELECT (confirmed_flush_lsn - '0/0')::text AS confirmed FROM pg_replication_slots WHERE slot_name = $1", [
        name,
      ])
    ).rows[0];

  test('SIGTERM during a snapshot with the broker down ends within the shutdown bound and acknowledges nothing unconfirmed', async () => {
    const env = envFor({ CDC_SNAPSHOT_CHUNK_ROWS: '1000' });
    const config = loadConfig(env);
    // The start-up check reaches the broker; then it goes away: every send meets a closed port.
    const broker = await KafkaPublisher.create(config.kafka);
    const gone = await KafkaPublisher.create({ ...config.kafka, brokers: [`127.0.0.1:${await closedPort()}`] });
    const r = await startReader(env, 'none', { publisher: gone, broker, shutdownTimeoutMs: BOUND_MS });
    try {
      await eventually('snapshot sends failing', () =>
        r.reader.phase === 'snapshot' && r.log.lines.some((l) => l.msg === 'broker send failed; retrying the same batch') ? true : undefined,
      );
      const before = await slot(env.CDC_SLOT!);
      expect(before).toBeDefined();

      expect(await stopWithin(r)).toBe('ended');
      expect(r.reader.phase).toBe('stopped');
      const stopped = r.log.lines.find((l) => l.msg === 'stopped');
      expect(stopped).toMatchObject({ during: 'snapshot', brokerConfirmedAll: false });
      expect(stopped?.unconfirmedRecords).toBeGreaterThan(0);
      // Nothing acknowledged: the slot did not move, and no chunk is recorded as delivered.
      await slotInactive(c, env.CDC_SLOT!);
      expect(await slot(env.CDC_SLOT!)).toEqual(before);
      const progress = await c.query<{ rows: string; done: boolean; last_key: unknown }>(
        `SELECT rows::text, done, last_key FROM "${env.CDC_STATE_SCHEMA}".snapshot_progress WHERE slot_name = $1`,
        [env.CDC_SLOT],
      );
      expect(progress.rows).toEqual([{ rows: '0', done: false, last_key: null }]);
    } finally {
      await r.stop();
      await broker.close();
      await gone.close();
    }
  });

  test('SIGTERM while the start-up broker check waits on a broker that never answers ends within the bound, with no slot', async () => {
    // Accepts connections and never answers: the client waits for its request timeout (60 s), retrying.
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => void sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const env = envFor({ KAFKA_BROKERS: `127.0.0.1:${(silent.address() as AddressInfo).port}` });
    const r = await startReader(env, 'none', { shutdownTimeoutMs: BOUND_MS });
    try {
      await eventually('the broker check connected', () => (sockets.length > 0 ? true : undefined));
      expect(await stopWithin(r)).toBe('ended');
      expect(r.log.lines.find((l) => l.msg === 'stopped')).toMatchObject({ during: 'starting' });
      const slots = await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [env.CDC_SLOT]);
      expect(slots.rows).toHaveLength(0);
    } finally {
      await r.stop();
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test('SIGTERM on the real entry point while the broker check waits on a broker that never answers: exit 0, no slot', async () => {
    const sockets: Socket[] = [];
    const silent: Server = createServer((s) => void sockets.push(s));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const env = envFor({ KAFKA_BROKERS: `127.0.0.1:${(silent.address() as AddressInfo).port}` });
    const child = spawnReader(env);
    try {
      await eventually('the broker check connected', () => (sockets.length > 0 ? true : undefined));
      child.proc.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      expect(child.lines.find((l) => l.msg === 'stopped')).toMatchObject({ during: 'starting' });
      expect((await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [env.CDC_SLOT])).rows).toHaveLength(0);
    } finally {
      child.proc.kill('SIGKILL');
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  test('SIGTERM while streaming with the broker down ends within the bound; the unconfirmed transaction stays in the slot', async () => {
    const env = envFor({ CDC_SNAPSHOT_MODE: 'never' });
    const config = loadConfig(env);
    const real = await KafkaPublisher.create(config.kafka);
    const gone = await KafkaPublisher.create({ ...config.kafka, brokers: [`127.0.0.1:${await closedPort()}`] });
    const broker = new SwitchableBroker(real);
    const r = await startReader(env, 'streaming', { publisher: broker, broker, shutdownTimeoutMs: BOUND_MS });
    const topic = await TopicCollector.start([config.topic]);
    try {
      await c.query(`UPDATE ${schema}.t SET v = 'confirmed' WHERE id = 1`);
      const events = await topic.waitFor('the confirmed change', (es) => es.some((e) => e.after?.v === 'confirmed'));
      const commitLsn = events.find((e) => e.after?.v === 'confirmed')!.source.commit_lsn!;
      await eventually('its acknowledgement', async () => (Number((await slot(env.CDC_SLOT!))?.confirmed) > commitLsn ? true : undefined));

      broker.current = gone;
      await c.query(`UPDATE ${schema}.t SET v = 'never-confirmed' WHERE id = 2`);
      await eventually('the send failing', () => (r.log.lines.some((l) => l.msg === 'broker send failed; retrying the same batch') ? true : undefined));

      expect(await stopWithin(r)).toBe('ended');
      expect(r.log.lines.find((l) => l.msg === 'stopped')).toMatchObject({ during: 'streaming', brokerConfirmedAll: false });
      // The slot still holds the transaction the broker never confirmed: a restart sends it again.
      await slotInactive(c, env.CDC_SLOT!);
      const pending = await c.query<{ data: Buffer }>(
        "SELECT data FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)",
        [env.CDC_SLOT, env.CDC_PUBLICATION],
      );
      expect(pending.rows.some((row) => row.data.includes('never-confirmed'))).toBe(true);
    } finally {
      await topic.close();
      await r.stop();
      await real.close();
      await gone.close();
    }
  });
});
