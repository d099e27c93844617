/**
 * Application Insights metric export: the real entry point with the real AzureMonitorMetricExporter,
 * real PostgreSQL and Kafka; only the ingestion endpoint (Breeze, `POST <IngestionEndpoint>/v2.1/track`)
 * is played by a local server that records the envelopes.
 *
 * The exporter rewrites an `http://` IngestionEndpoint to `https://` (ConnectionStringParser.sanitizeUrl),
 * so the stand-in serves HTTPS with a throw-away self-signed certificate for 127.0.0.1 (made with the
 * openssl CLI), which the reader process trusts through NODE_EXTRA_CA_CERTS (test/helpers/breeze.ts). Nothing in the reader
 * disables TLS verification.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type pg from 'pg';
import { ConfigError, loadConfig } from '../../src/reader/config.js';
import { fakeBreeze, metricPoints as points, type FakeBreeze } from '../helpers/breeze.js';
import { ReaderMetrics } from '../../src/reader/metrics.js';
import { cleanup, eventually, pgClient, readerEnv, spawnReader, TopicCollector, uniqueName } from './helpers.js';

describe('reader: OpenTelemetry metrics to Application Insights', () => {
  const name = uniqueName('rd_otel');
  const schema = `${name}_s`;
  const table = `${schema}.items`;
  let c: pg.Client;
  let breeze: FakeBreeze;

  beforeAll(async () => {
    c = await pgClient();
    await c.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${table} (id int PRIMARY KEY, v text NOT NULL)`);
    await c.query(`INSERT INTO ${table} SELECT g, 'snap' FROM generate_series(1, 25) g`);
    breeze = await fakeBreeze();
  });
  afterAll(async () => {
    await breeze.close();
    await cleanup(c, name, [schema]);
    await c.end();
  });

  test('changes counter, schema changes counter, slot lag, commit-to-ack histogram and snapshot progress reach the ingestion endpoint; the connection string never reaches a log line', async () => {
    const ikey = '00000000-0000-0000-0000-000000000000';
    const connectionString = breeze.connectionString(ikey);
    const topic = await TopicCollector.start([`${name}_events`]);
    const child = spawnReader(
      readerEnv(name, {
        CDC_TABLES: table,
        CDC_SNAPSHOT_MODE: 'initial',
        CDC_SNAPSHOT_CHUNK_ROWS: '10',
        APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString,
        OTEL_METRIC_EXPORT_INTERVAL: '1000',
        // No SDK self-telemetry (statsbeat) to Microsoft's endpoints from a test.
        APPLICATION_INSIGHTS_NO_STATSBEAT: 'true',
        LOG_LEVEL: 'debug',
        // Trust the stand-in's self-signed certificate (the exporter only speaks HTTPS).
        NODE_EXTRA_CA_CERTS: breeze.caFile,
      }),
    );
    try {
      await eventually('streaming', () => (child.lines.some((l) => l.msg === 'streaming started') ? true : undefined), 60_000);
      // 10 inserts, 6 updates, 4 deletes in 20 single-row transactions.
      for (let i = 100; i < 110; i++) await c.query(`INSERT INTO ${table} VALUES ($1, 'new')`, [i]);
      for (let i = 100; i < 106; i++) await c.query(`UPDATE ${table} SET v = 'upd' WHERE id = $1`, [i]);
      for (let i = 1; i <= 4; i++) await c.query(`DELETE FROM ${table} WHERE id = $1`, [i]);
      // A schema change, seen with the insert after it: the 21st change.
      await c.query(`ALTER TABLE ${table} ADD COLUMN extra text`);
      await c.query(`INSERT INTO ${table} VALUES (300, 'after', 'x')`);
      await topic.waitFor('21 streamed changes', (ev) => ev.filter((e) => e.op !== 'r').length >= 21);

      const sum = (n: string, filter: (p: Record<string, string>) => boolean = () => true) =>
        points(breeze.envelopes, n)
          .filter((p) => filter(p.properties))
          .reduce((a, p) => a + p.value, 0);
      const byOp = (op: string) => sum('cdc.reader.changes', (p) => p['cdc.op'] === op && p['cdc.table'] === table);
      try {
        await eventually(
          'exported changes, latency and slot lag',
          () => {
            const lat = points(breeze.envelopes, 'cdc.reader.commit_to_ack.ms');
            return byOp('c') >= 11 &&
              byOp('u') >= 6 &&
              byOp('d') >= 4 &&
              lat.reduce((a, p) => a + (p.count ?? 0), 0) >= 21 &&
              sum('cdc.reader.schema_changes', (p) => p['cdc.table'] === table) >= 1 &&
              points(breeze.envelopes, 'cdc.reader.slot.lag.bytes').length > 0
              ? true
              : undefined;
          },
          45_000,
        );
      } catch (err) {
        throw new Error(
          `${(err as Error).message}; metrics seen: ${[...new Set(breeze.envelopes.flatMap((e) => (e.data.baseData.metrics ?? []).map((m) => m.name)))].join(', ')}; requests: ${JSON.stringify(breeze.requests.slice(0, 3))}; logs: ${JSON.stringify(child.lines.filter((l) => l.level === 'warn' || l.level === 'error').slice(-5))}`,
          { cause: err },
        );
      }

      // Envelope shape as the exporter sends it to Breeze.
      const env = breeze.envelopes.find((e) => (e.data.baseData.metrics ?? []).some((m) => m.name === 'cdc.reader.changes'))!;
      expect(env).toMatchObject({ name: 'Microsoft.ApplicationInsights.Metric', iKey: ikey, data: { baseType: 'MetricData' } });
      expect(env.tags?.['ai.cloud.role']).toBe('pg-cdc-reader');
      expect(env.data.baseData.properties).toMatchObject({ 'cdc.slot': name, 'cdc.table': table });
      expect(breeze.requests.every((r) => /\/v2\.1\/track$/.test(r.path))).toBe(true);

      // Delta counter: the exported deltas add up to exactly the streamed changes (no more, no fewer).
      expect(byOp('c')).toBe(11);
      expect(byOp('u')).toBe(6);
      expect(byOp('d')).toBe(4);
      expect(sum('cdc.reader.schema_changes', (p) => p['cdc.table'] === table)).toBe(1);
      // Histogram: one sample per transaction, plausible latencies (ms, positive, below a minute).
      const lat = points(breeze.envelopes, 'cdc.reader.commit_to_ack.ms');
      expect(lat.reduce((a, p) => a + (p.count ?? 0), 0)).toBe(21);
      for (const p of lat.filter((x) => (x.count ?? 0) > 0)) {
        expect(p.min).toBeGreaterThanOrEqual(0);
        expect(p.max).toBeLessThan(60_000);
        expect(p.value).toBeGreaterThanOrEqual(p.min! * p.count!);
      }
      // Gauges.
      const lagBytes = points(breeze.envelopes, 'cdc.reader.slot.lag.bytes');
      expect(lagBytes.every((p) => Number.isFinite(p.value) && p.value >= 0)).toBe(true);
      const lagSec = points(breeze.envelopes, 'cdc.reader.slot.lag.seconds');
      expect(lagSec.length).toBeGreaterThan(0);
      expect(lagSec.every((p) => p.value >= 0 && p.value < 60)).toBe(true);
      // Snapshot progress: 25 rows read in chunks of 10, done, total = rows once done.
      const done = points(breeze.envelopes, 'cdc.reader.snapshot.rows.done').filter((p) => p.properties['cdc.table'] === table);
      const total = points(breeze.envelopes, 'cdc.reader.snapshot.rows.total').filter((p) => p.properties['cdc.table'] === table);
      expect(done.at(-1)).toMatchObject({ value: 25, properties: { 'cdc.snapshot.done': 'true' } });
      expect(total.at(-1)?.value).toBe(25);
      // Readiness (the readiness alert's metric): streaming, so ready.
      expect(points(breeze.envelopes, 'cdc.reader.ready').at(-1)?.value).toBe(1);
    } finally {
      child.proc.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      await topic.close();
    }
    expect(child.lines.some((l) => l.msg === 'Application Insights metric export on')).toBe(true);
    const all = JSON.stringify(child.lines);
    expect(all).not.toContain(connectionString);
    expect(all).not.toContain(ikey);
    expect(child.lines.filter((l) => l.level === 'warn' && String(l.msg).startsWith('opentelemetry'))).toEqual([]);
  });

  test('an unreachable ingestion endpoint is logged (masked) and does not disturb the change stream or the shutdown', async () => {
    const ikey = '11111111-2222-4333-8444-555555555555';
    // Port 1 on the loopback: connection refused.
    const connectionString = `InstrumentationKey=${ikey};IngestionEndpoint=https://127.0.0.1:1/`;
    const slot = `${name}_down`;
    const topic = await TopicCollector.start([`${slot}_events`]);
    const child = spawnReader(
      readerEnv(slot, {
        CDC_TABLES: table,
        CDC_SNAPSHOT_MODE: 'never',
        APPLICATIONINSIGHTS_CONNECTION_STRING: connectionString,
        OTEL_METRIC_EXPORT_INTERVAL: '500',
        APPLICATION_INSIGHTS_NO_STATSBEAT: 'true',
      }),
    );
    try {
      await eventually('streaming', () => (child.lines.some((l) => l.msg === 'streaming started') ? true : undefined), 60_000);
      for (let i = 200; i < 205; i++) await c.query(`INSERT INTO ${table} VALUES ($1, 'while export fails')`, [i]);
      await topic.waitFor('5 inserts', (ev) => ev.filter((e) => e.op === 'c').length >= 5);
      await eventually(
        'export failure logged',
        () => (child.lines.some((l) => l.level === 'warn' && String(l.msg).startsWith('opentelemetry')) ? true : undefined),
        20_000,
      );
    } finally {
      // Graceful stop, then the last export (bounded to 5 s in main.ts), then exit 0.
      child.proc.kill('SIGTERM');
      expect(await child.exited).toBe(0);
      await topic.close();
      await cleanup(c, slot);
    }
    const all = JSON.stringify(child.lines);
    expect(all).not.toContain(connectionString);
    expect(all).not.toContain(ikey);
  });

  test('configuration: connection string and export interval are validated, the secret is never echoed', () => {
    const base = { KAFKA_BROKERS: 'localhost:9092' };
    const bad = 'InstrumentationKey=not-a-guid;IngestionEndpoint=https://x.in.applicationinsights.azure.com/';
    expect(() => loadConfig({ ...base, APPLICATIONINSIGHTS_CONNECTION_STRING: bad })).toThrow(ConfigError);
    try {
      loadConfig({ ...base, APPLICATIONINSIGHTS_CONNECTION_STRING: bad });
    } catch (err) {
      expect((err as Error).message).toContain('APPLICATIONINSIGHTS_CONNECTION_STRING');
      expect((err as Error).message).not.toContain('not-a-guid');
    }
    const good = 'InstrumentationKey=0a1b2c3d-0000-4000-8000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/';
    expect(() => loadConfig({ ...base, APPLICATIONINSIGHTS_CONNECTION_STRING: good.replace('https://', 'ftp://') })).toThrow(/IngestionEndpoint/);
    expect(loadConfig({ ...base, APPLICATIONINSIGHTS_CONNECTION_STRING: good }).appInsightsConnectionString).toBe(good);
    expect(loadConfig(base).otel).toEqual({ exportIntervalMs: 60_000, serviceName: 'pg-cdc-reader' });
    expect(loadConfig({ ...base, OTEL_METRIC_EXPORT_INTERVAL: '1500', OTEL_SERVICE_NAME: 'reader-eu' }).otel).toEqual({
      exportIntervalMs: 1500,
      serviceName: 'reader-eu',
    });
    expect(() => loadConfig({ ...base, OTEL_METRIC_EXPORT_INTERVAL: '10' })).toThrow(/OTEL_METRIC_EXPORT_INTERVAL/);
    expect(() => loadConfig({ ...base, OTEL_METRIC_EXPORT_INTERVAL: 'soon' })).toThrow(/OTEL_METRIC_EXPORT_INTERVAL/);
  });

  test('ReaderMetrics is the single source: per table/op counts, snapshot progress, histogram subscribers', () => {
    const m = new ReaderMetrics();
    m.countChange('s', 't', 'c');
    m.countChange('s', 't', 'c');
    m.countChange('s', 'u', 'd');
    expect(m.changes).toBe(3);
    expect(m.toJSON().changesByTable).toEqual({ 's.t': { c: 2 }, 's.u': { d: 1 } });
    m.snapshotProgress({ schema: 's', table: 't', rowsDone: 0, rowsTotal: 100, done: false }, 0);
    m.snapshotProgress({ schema: 's', table: 't', rowsDone: 40, rowsTotal: 100, done: false }, 40);
    expect(m.snapshotTables.get('s.t')).toMatchObject({ rowsDone: 40, rowsTotal: 100, done: false });
    m.snapshotProgress({ schema: 's', table: 't', rowsDone: 97, rowsTotal: 100, done: true }, 57);
    expect(m.snapshotTables.get('s.t')).toMatchObject({ rowsDone: 97, rowsTotal: 97, done: true });
    expect(m.snapshotRows).toBe(97);
    const seen: number[] = [];
    const off = m.commitToAckMs.subscribe((v) => seen.push(v));
    m.commitToAckMs.record(5);
    off();
    m.commitToAckMs.record(7);
    expect(seen).toEqual([5]);
    expect(m.commitToAckMs.count).toBe(2);
  });
});
