/**
 * A broker that cannot be reached or refuses the credentials is named (brokers, security protocol,
 * likely fix): at start-up before any slot exists, and while streaming on /readyz and in the log.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type pg from 'pg';
import { startHealthServer } from '../../src/shared/core/health.js';
import { loadConfig } from '../../src/reader/config.js';
import { KafkaPublisher } from '../../src/reader/publish/kafkaPublisher.js';
import { cleanup, closedPort, eventually, pgClient, readerEnv, startReader, startupError, SwitchableBroker, TopicCollector, uniqueName } from './helpers.js';

describe('reader: broker connection', () => {
  const schema = uniqueName('rd_brk_s');
  const names: string[] = [];
  let c: pg.Client;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.t (id int PRIMARY KEY, v text)`);
  });
  afterAll(async () => {
    for (const n of names) await cleanup(c, n);
    await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await c.end();
  });

  const slotExists = async (slot: string) => (await c.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])).rows.length > 0;
  const envFor = (extra: Record<string, string>) => {
    const name = uniqueName('rd_brk');
    names.push(name);
    return readerEnv(name, { CDC_TABLES: `${schema}.t`, ...extra });
  };

  test('a broker that cannot be reached fails start-up naming the broker and the fix, before any slot exists', async () => {
    const port = await closedPort();
    const env = envFor({ KAFKA_BROKERS: `127.0.0.1:${port}` });
    const err = await startupError(env);
    expect(err.code).toBe('BROKER_UNREACHABLE');
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).toContain('KAFKA_SECURITY_PROTOCOL=PLAINTEXT');
    expect(err.message).toMatch(/ECONNREFUSED/);
    expect(err.message).toMatch(/listener/);
    expect(err.message).toMatch(/9093.*SASL_SSL.*\$ConnectionString.*namespace connection string/s);
    expect(await slotExists(env.CDC_SLOT!)).toBe(false);
  });

  test('SASL configured where the broker has none: a clear authentication failure, before any slot exists, no secret echoed', async () => {
    const password = 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=sasl-secret-1234';
    const env = envFor({ KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT', KAFKA_SASL_PASSWORD: password });
    const err = await startupError(env);
    expect(err.code).toBe('BROKER_AUTH_FAILED');
    expect(err.message).toContain(env.KAFKA_BROKERS);
    expect(err.message).toMatch(/do not accept SASL PLAIN.*KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT/s);
    expect(err.message).not.toContain('sasl-secret-1234');
    expect(await slotExists(env.CDC_SLOT!)).toBe(false);

    // SASL_SSL against the same plaintext listener: the TLS handshake fails, and says so.
    const tls = envFor({ KAFKA_SECURITY_PROTOCOL: 'SASL_SSL', KAFKA_SASL_PASSWORD: password });
    const tlsErr = await startupError(tls);
    expect(tlsErr.code).toBe('BROKER_UNREACHABLE');
    expect(tlsErr.message).toMatch(/TLS.*failed.*KAFKA_SECURITY_PROTOCOL=SASL_SSL/s);
    expect(tlsErr.message).not.toContain('sasl-secret-1234');
    expect(await slotExists(tls.CDC_SLOT!)).toBe(false);
  });

  test('a broker that goes away while streaming turns /readyz red and is named in the log; back, it turns green', async () => {
    const env = envFor({ CDC_SNAPSHOT_MODE: 'never' });
    const config = loadConfig(env);
    const real = await KafkaPublisher.create(config.kafka);
    const port = await closedPort();
    const gone = await KafkaPublisher.create({ ...config.kafka, brokers: [`127.0.0.1:${port}`] });
    const broker = new SwitchableBroker(real);
    const r = await startReader(env, 'streaming', { publisher: broker, broker });
    let health: Server | null = null;
    const topic = await TopicCollector.start([config.topic]);
    try {
      health = await startHealthServer(0, { live: () => r.reader.phase !== 'failed', ready: () => r.reader.ready, metrics: () => ({}) });
      const readyz = async () => (await fetch(`http://127.0.0.1:${(health!.address() as AddressInfo).port}/readyz`)).status;
      await c.query(`INSERT INTO ${schema}.t VALUES (1, 'before')`);
      await topic.waitFor('the first row', (es) => es.some((e) => e.after?.id === 1));
      expect(await readyz()).toBe(200);

      broker.current = gone;
      // Nothing is sent: the probe notices.
      await eventually('/readyz not ready', async () => ((await readyz()) === 503 ? true : undefined), 30_000);
      const probe = r.log.lines.find((l) => l.msg === 'broker unreachable');
      expect(probe).toMatchObject({ code: 'BROKER_UNREACHABLE' });
      expect(probe?.error).toEqual(expect.stringContaining(`127.0.0.1:${port}`));
      expect(probe?.error).toEqual(expect.stringContaining('KAFKA_SECURITY_PROTOCOL=PLAINTEXT'));
      // A change while it is away: the failed send is logged with the same naming (not "metadata failed 4 times").
      await c.query(`INSERT INTO ${schema}.t VALUES (2, 'while away')`);
      const failed = await eventually('a failed send logged', () => r.log.lines.find((l) => l.msg === 'broker send failed; retrying the same batch'));
      expect(failed).toMatchObject({ code: 'BROKER_UNREACHABLE' });
      expect(failed.error).toEqual(expect.stringContaining(`127.0.0.1:${port}`));
      expect(r.reader.ready).toBe(false);

      broker.current = real;
      await topic.waitFor('the row sent while the broker was away', (es) => es.some((e) => e.after?.id === 2), 60_000);
      await eventually('/readyz ready again', async () => ((await readyz()) === 200 ? true : undefined), 30_000);
      expect(r.log.lines.some((l) => l.msg === 'broker reachable again')).toBe(true);
    } finally {
      health?.close();
      await topic.close();
      await r.stop();
      await real.close();
      await gone.close();
    }
  });
});
