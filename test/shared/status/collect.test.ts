/** The status JSON against the real services: every number is one the test laid out. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { collectStatus, statusSourcesFromEnv, type StatusSources } from '../../../src/shared/status/collect.js';
import { statusLine, statusText } from '../../../src/shared/status/summary.js';
import { isPartError, type Part, type PipelineStatus } from '../../../src/shared/status/types.js';
import { HOSTILE, statusKit, type StatusKit } from './statusKit.js';

function ok<T>(part: Part<T>): T {
  if (isPartError(part)) throw new Error(`part failed: ${part.error}`);
  return part;
}

describe('collectStatus over real services', () => {
  let kit: StatusKit;
  let sources: StatusSources;
  let status: PipelineStatus;
  let walAfter: number;

  beforeAll(async () => {
    kit = await statusKit('st_json');
    sources = statusSourcesFromEnv(kit.env);
    status = await collectStatus(sources, { timeoutMs: 20_000 });
    const after = await kit.pg.query<{ lag: string }>(
      'SELECT (pg_catalog.pg_current_wal_lsn() - confirmed_flush_lsn)::bigint::text AS lag FROM pg_catalog.pg_replication_slots WHERE slot_name = $1',
      [kit.names.slot],
    );
    walAfter = Number(after.rows[0]!.lag);
  });
  afterAll(async () => {
    await sources?.close();
    await kit?.close();
  });

  it('PostgreSQL: the slot, its lag in bytes against pg_current_wal_lsn(), wal_status, safe_wal_size, the publication', async () => {
    const pg = ok(status.postgres);
    expect(pg.slot).toMatchObject({
      name: kit.names.slot,
      plugin: 'pgoutput',
      active: false,
      confirmedFlushLsn: kit.expected.confirmedFlushLsn,
      restartLsn: kit.expected.restartLsn,
    });
    // Other tests write WAL too: the lag is at least what this test wrote, at most what the server had written after the collection.
    expect(kit.expected.minLagBytes).toBeGreaterThan(0);
    expect(pg.slot.lagBytes).toBeGreaterThanOrEqual(kit.expected.minLagBytes);
    expect(pg.slot.lagBytes).toBeLessThanOrEqual(walAfter);
    expect(pg.slot.retainedBytes).toBeGreaterThanOrEqual(pg.slot.lagBytes!);
    const server = await kit.pg.query<{ keep: string }>("SELECT pg_catalog.current_setting('max_slot_wal_keep_size') AS keep");
    expect(pg.slot.walStatus).toBe('reserved');
    if (server.rows[0]!.keep === '-1') expect(pg.slot.safeWalSizeBytes).toBeNull();
    else expect(pg.slot.safeWalSizeBytes).toBeGreaterThan(0);
    expect(pg.publication).toEqual({ name: kit.names.publication, allTables: false, tables: 1 });
  });

  it("the reader: its own metrics, from its health server's GET /metrics", () => {
    expect(ok(status.reader)).toMatchObject({
      changes: kit.expected.readerChanges,
      snapshotRows: 0,
      claimChecked: 0,
      lastPublishedCommitTime: kit.expected.lastPublishedCommitTime,
    });
  });

  it('the hub: per partition the end offset, per sink the committed offset and lag = end − committed', () => {
    const hub = ok(status.hub);
    expect(hub).toMatchObject({ kind: 'kafka', topic: kit.names.topic, published: 8, newestEventTime: kit.expected.newestRecordTime });
    expect(hub.partitions).toEqual(kit.expected.partitionEnds.map((end, i) => ({ partition: String(i), start: 0, end })));
    const es = ok(hub.groups.find((g) => !isPartError(g) && g.sink === 'elasticsearchSink')!);
    expect(es.consumerGroup).toBe(kit.names.esGroup);
    expect(es.partitions.map((p) => p.committed)).toEqual(kit.expected.esCommitted);
    expect(es.partitions.map((p) => p.lag)).toEqual([3, 0, 0]);
    expect(es.lag).toBe(kit.expected.esLag);
    const history = ok(hub.groups.find((g) => !isPartError(g) && g.sink === 'changeHistory')!);
    expect(history).toMatchObject({ consumerGroup: kit.names.historyGroup, lag: kit.expected.historyLag });
    expect(history.partitions.map((p) => p.committed)).toEqual([null, null, null]);
    // ADX is not configured here, so the status does not report its group (as the worker would not run it).
    expect(hub.groups).toHaveLength(2);
  });

  it('Elasticsearch: documents per index and in its -live alias, the newest change, the change history', () => {
    const es = ok(status.elasticsearch);
    const orders = es.indices.find((i) => i.table === 'retail.orders_info')!;
    expect(orders).toEqual({
      table: 'retail.orders_info',
      index: kit.names.index,
      exists: true,
      documents: kit.expected.documents,
      liveAlias: `${kit.names.index}-live`,
      liveDocuments: kit.expected.liveDocuments,
      newestCommitTime: kit.expected.newestIndexed,
    });
    expect(es.indices.find((i) => i.table === 'bank.holding')).toMatchObject({ exists: false, documents: 0, liveDocuments: 0, newestCommitTime: null });
    expect(es.history).toEqual({ index: kit.names.history, exists: true, documents: kit.expected.historyDocuments });
    expect(es.documents).toBe(kit.expected.documents);
  });

  it('dead letters: per container, by sink, the newest with their reasons (verbatim in the JSON)', () => {
    const dl = ok(status.deadLetters);
    expect(dl.total).toBe(3);
    const [container] = dl.containers;
    expect(container).toMatchObject({ container: kit.names.container, exists: true, count: 3, truncated: false, bySink: kit.expected.deadLetters });
    expect(container!.newest).toHaveLength(3);
    const reasons = container!.newest.map((e) => e.reason);
    expect(reasons).toContain(`history refused: ${HOSTILE}`);
    expect(reasons.filter((r) => r.startsWith('PermanentRecordError: Body is not JSON'))).toHaveLength(2);
    expect(container!.newest.every((e) => e.partition === '0' && e.offset !== null && e.deadLetteredAt !== null)).toBe(true);
  });

  it("end to end: the reader's newest committed change against the newest indexed one", () => {
    expect(status.endToEnd).toEqual({
      newestCommitted: kit.expected.lastPublishedCommitTime,
      newestCommittedSource: 'reader',
      newestIndexed: kit.expected.newestIndexed,
      lagMs: kit.expected.endToEndLagMs,
    });
  });

  it('the one-liner and the terminal text carry the same numbers', () => {
    expect(statusLine(status, { ordersWritten: 12 })).toBe('orders 12 | published 8 | indexed 3 | dead letters 3 | end-to-end lag 1.5 s');
    const text = statusText(status);
    expect(text).toContain(`group ${kit.names.esGroup}: lag 3 (0:3 1:0 2:0)`);
    expect(text).toContain(`${kit.names.index}: 3 documents, 2 in ${kit.names.index}-live`);
    // eslint-disable-next-line no-control-regex -- no control character from data reaches the terminal
    expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f]/);
  });

  it("without the reader's metrics, the hub's newest publish time stands in for the newest commit", async () => {
    const { READER_METRICS_URL: _unused, ...env } = kit.env;
    const without = statusSourcesFromEnv(env);
    try {
      const s = await collectStatus(without, { timeoutMs: 20_000 });
      expect(s.reader).toEqual({ error: expect.stringMatching(/^not configured: set READER_METRICS_URL/), configured: false });
      expect(s.endToEnd).toEqual({
        newestCommitted: kit.expected.newestRecordTime,
        newestCommittedSource: 'hub',
        newestIndexed: kit.expected.newestIndexed,
        lagMs: Date.parse(kit.expected.newestRecordTime) - Date.parse(kit.expected.newestIndexed),
      });
    } finally {
      await without.close();
    }
  });
});

describe('a source that fails shows in its own part', () => {
  it('an unreachable reader, a missing slot and a missing topic fail their parts only, each naming the setting', async () => {
    const kit = await statusKit('st_fail');
    const sources = statusSourcesFromEnv({
      ...kit.env,
      READER_METRICS_URL: 'http://127.0.0.1:9/metrics',
      CDC_SLOT: 'no_such_slot',
      CDC_TOPIC: `${kit.names.topic}_missing`,
    });
    try {
      const s = await collectStatus(sources, { timeoutMs: 20_000 });
      expect(s.reader).toEqual({
        error: expect.stringMatching(/cannot reach the reader's metrics at http:\/\/127\.0\.0\.1:9\/metrics \(READER_METRICS_URL\)/),
      });
      expect(s.postgres).toEqual({ error: expect.stringMatching(/no replication slot no_such_slot \(CDC_SLOT\)/) });
      expect(s.hub).toEqual({ error: expect.stringMatching(/CDC_TOPIC/) });
      expect(ok(s.deadLetters).total).toBe(3);
      expect(ok(s.elasticsearch).documents).toBe(3);
      expect(s.endToEnd).toMatchObject({ newestCommitted: null, lagMs: null, newestIndexed: kit.expected.newestIndexed });
    } finally {
      await sources.close();
      await kit.close();
    }
  });

  it('a source that does not answer within the timeout is reported as such, the others are not held up', async () => {
    const never = () => new Promise<never>(() => undefined);
    const started = Date.now();
    const s = await collectStatus(
      {
        postgres: never,
        reader: { error: 'not configured: set READER_METRICS_URL', configured: false },
        hub: never,
        elasticsearch: () => Promise.reject(new Error('refused: password=hunter2 Endpoint=sb://x/;SharedAccessKey=abc123')),
        deadLetters: () => Promise.resolve({ containers: [], total: 0 }),
        close: () => Promise.resolve(),
      },
      { timeoutMs: 200 },
    );
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(s.postgres).toEqual({ error: 'PostgreSQL did not answer within 200 ms (STATUS_SOURCE_TIMEOUT_MS)' });
    expect(s.hub).toEqual({ error: 'the hub did not answer within 200 ms (STATUS_SOURCE_TIMEOUT_MS)' });
    expect(s.deadLetters).toEqual({ containers: [], total: 0 });
    // Error messages pass through redact: a secret in a client's message does not reach the status.
    expect(JSON.stringify(s.elasticsearch)).not.toContain('abc123');
  });

  it('with no settings, every source says what turns it on', () => {
    const sources = statusSourcesFromEnv({});
    expect(sources.postgres).toEqual({ error: expect.stringMatching(/^not configured: set PGHOST/), configured: false });
    expect(sources.reader).toEqual({ error: expect.stringMatching(/^not configured: set READER_METRICS_URL/), configured: false });
    expect(sources.hub).toEqual({ error: expect.stringMatching(/^not configured: set KAFKA_BROKERS .*EventHubConnection/), configured: false });
    expect(sources.elasticsearch).toEqual({ error: 'not configured: set ELASTICSEARCH_URL', configured: false });
    expect(sources.deadLetters).toEqual({
      error: expect.stringMatching(/^not configured: SINK_DEADLETTER_ACCOUNT_URL: expected a Blob service URL/),
      configured: false,
    });
  });

  it('a bad setting fails its source naming the variable, not the whole status', () => {
    const sources = statusSourcesFromEnv({ READER_METRICS_URL: 'ftp://reader/metrics', STATUS_HUB: 'carrier-pigeon' });
    expect(sources.reader).toEqual({ error: 'READER_METRICS_URL: expected an http(s) URL, got "ftp://reader/metrics"' });
    expect(sources.hub).toEqual({ error: 'STATUS_HUB: expected one of auto, kafka, eventhubs, got "carrier-pigeon"' });
  });
});
