/**
 * A pipeline laid out on the real test services for the status tests, with every number known:
 * a slot and publication with WAL written past them, the reader's real metrics server, a topic with
 * records and committed consumer groups, Elasticsearch indices with their `-live` aliases and a
 * change history, and dead letters in Azurite (one with a hostile reason).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Admin, Producer } from '@platformatic/kafka';
import { BlobServiceClient } from '@azure/storage-blob';
import pg from 'pg';
import { processBatch } from '../../../src/shared/batch/processBatch.js';
import type { BatchInfo, EventRecord } from '../../../src/shared/batch/types.js';
import { startHealthServer } from '../../../src/shared/core/health.js';
import { BlobDeadLetterStore } from '../../../src/shared/deadletter/blobDeadLetterStore.js';
import { ReaderMetrics } from '../../../src/reader/metrics.js';
import { changeEvent, order } from '../../helpers/events.js';
import { serviceEnv, uniqueName } from '../../helpers/services.js';
import { cleanup as cleanupIndices, testClient, testRoutes, testSink, uniqueIndex } from '../esTestKit.js';

export const HOSTILE = '<img src=x onerror="document.title=\'pwned\'">&<script>alert(1)</script>';

export interface StatusKit {
  env: Record<string, string>;
  names: { slot: string; publication: string; topic: string; esGroup: string; historyGroup: string; index: string; history: string; container: string };
  expected: {
    /** Written after the slot was made: the slot's lag is at least this. */
    minLagBytes: number;
    confirmedFlushLsn: string;
    restartLsn: string;
    readerChanges: number;
    lastPublishedCommitTime: string;
    partitionEnds: number[];
    esCommitted: (number | null)[];
    esLag: number;
    historyLag: number;
    newestRecordTime: string;
    documents: number;
    liveDocuments: number;
    newestIndexed: string;
    historyDocuments: number;
    deadLetters: { elasticsearchSink: number; changeHistory: number };
    endToEndLagMs: number;
  };
  pg: pg.Client;
  close(): Promise<void>;
}

const COMMIT_TS = Date.parse('2026-03-01T10:00:00.000Z');

export async function statusKit(prefix: string): Promise<StatusKit> {
  const services = serviceEnv();
  const name = uniqueName(prefix);
  const dashed = uniqueIndex(prefix);
  const names = {
    slot: name,
    publication: `${name}_pub`,
    topic: `${name}_events`,
    esGroup: `${name}_es`,
    historyGroup: `${name}_history`,
    index: dashed,
    history: `${dashed}-history`,
    container: dashed.slice(0, 63),
  };
  const closers: (() => Promise<unknown>)[] = [];

  // PostgreSQL: a table, its publication, a slot nobody reads; then WAL written past the slot.
  const client = new pg.Client({ ...services.pg });
  await client.connect();
  closers.push(() => client.end());
  // The publication also holds the reader's signal table (<CDC_STATE_SCHEMA>.signals), which the status leaves out of its count.
  await client.query(
    `CREATE SCHEMA ${name}; CREATE TABLE ${name}.t (id int PRIMARY KEY, v text); CREATE SCHEMA ${name}_state; CREATE TABLE ${name}_state.signals (id text PRIMARY KEY); ` +
      `CREATE PUBLICATION ${names.publication} FOR TABLE ${name}.t, ${name}_state.signals`,
  );
  closers.push(() =>
    client.query(`DROP PUBLICATION IF EXISTS ${names.publication}; DROP SCHEMA IF EXISTS ${name} CASCADE; DROP SCHEMA IF EXISTS ${name}_state CASCADE`),
  );
  await client.query(`SELECT pg_catalog.pg_create_logical_replication_slot($1, 'pgoutput')`, [names.slot]);
  closers.push(() => client.query('SELECT pg_catalog.pg_drop_replication_slot($1)', [names.slot]));
  // The test servers run with synchronous_commit = off, where pg_current_wal_lsn() (the write position, which the status reports
  // against) can stay behind a commit until the WAL writer's next round: this commit waits for its flush, so the lag is there.
  await client.query(`BEGIN; SET LOCAL synchronous_commit = on; INSERT INTO ${name}.t SELECT g, repeat('x', 100) FROM generate_series(1, 200) g; COMMIT`);
  const lsns = await client.query<{ lag: string; confirmed: string; restart: string }>(
    `SELECT (pg_catalog.pg_current_wal_lsn() - confirmed_flush_lsn)::bigint::text AS lag, confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart
     FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`,
    [names.slot],
  );
  const slotRow = lsns.rows[0]!;

  // The reader's metrics, served by the reader's own health server and metrics object.
  const metrics = new ReaderMetrics();
  for (let i = 0; i < 7; i++) metrics.countChange(name, 't', i < 5 ? 'c' : 'u');
  metrics.lastPublishedCommitTimeMs = COMMIT_TS;
  const health: Server = await startHealthServer(0, { live: () => true, ready: () => true, metrics: () => metrics.toJSON() });
  closers.push(() => new Promise((resolve) => health.close(resolve)));
  const readerUrl = `http://127.0.0.1:${(health.address() as AddressInfo).port}/metrics`;

  // Kafka: 3 partitions with 5, 3 and 0 records; the Elasticsearch sink's group committed at 2 and 3, the history's at nothing.
  const admin = new Admin({ clientId: 'status-test', bootstrapBrokers: services.kafkaBrokers });
  closers.push(() => admin.close());
  await admin.createTopics({ topics: [names.topic], partitions: 3, replicas: 1 });
  closers.push(() => admin.deleteTopics({ topics: [names.topic] }).catch(() => undefined));
  const producer = new Producer({ clientId: 'status-test', bootstrapBrokers: services.kafkaBrokers, acks: -1, idempotent: true });
  const counts = [5, 3, 0];
  const newestRecord = COMMIT_TS + 250;
  try {
    await producer.send({
      messages: counts.flatMap((n, partition) =>
        Array.from({ length: n }, (_, i) => ({
          topic: names.topic,
          partition,
          value: Buffer.from(JSON.stringify(changeEvent({ after: order(partition * 10 + i) }))),
          timestamp: BigInt(newestRecord - (partition * 10 + (n - 1 - i)) * 1000),
        })),
      ),
    });
  } finally {
    await producer.close();
  }
  await admin.alterConsumerGroupOffsets({
    groupId: names.esGroup,
    topics: [
      {
        name: names.topic,
        partitionOffsets: [
          { partition: 0, offset: 2n },
          { partition: 1, offset: 3n },
        ],
      },
    ],
  });
  closers.push(() => admin.deleteGroups({ groups: [names.esGroup] }).catch(() => undefined));

  // Elasticsearch: 3 orders indexed by the real sink, one of them deleted (soft: in the index, not in -live); 2 history rows.
  const es = testClient();
  closers.push(() => es.close());
  closers.push(() => cleanupIndices(es, [names.index, `${names.index}-holding`, `${names.index}-control`, names.history]));
  const routes = testRoutes(names.index);
  const sink = testSink(es, routes, { controlIndex: `${names.index}-control` });
  const storage = BlobServiceClient.fromConnectionString(services.azureStorageConnectionString);
  const container = storage.getContainerClient(names.container);
  closers.push(() => container.deleteIfExists());
  const store = new BlobDeadLetterStore(container);
  const batchOf = (functionName: string): BatchInfo => ({
    functionName,
    namespace: '127.0.0.1',
    eventHubName: names.topic,
    consumerGroup: functionName === 'elasticsearchSink' ? names.esGroup : names.historyGroup,
    partitionId: '0',
    firstOffset: '0',
    lastOffset: '9',
  });
  let offset = 0;
  const records = (bodies: unknown[]): EventRecord[] =>
    bodies.map((body) => ({ body, partitionId: '0', offset: String(offset++), sequenceNumber: String(offset) }));
  const newestIndexed = COMMIT_TS - 1500;
  const events = [
    changeEvent({ after: order(1), tsMs: newestIndexed - 3000 }),
    changeEvent({ after: order(2), tsMs: newestIndexed - 2000 }),
    changeEvent({ after: order(3), tsMs: newestIndexed - 1000 }),
    changeEvent({ op: 'd', before: order(2), tsMs: newestIndexed }),
  ];
  // Two poison records of the Elasticsearch sink (one with markup in its body), dead-lettered by the batch core with its reason.
  const esReport = await processBatch(records([...events, Buffer.from(HOSTILE), Buffer.from('not json either')]), {
    sink,
    deadLetters: store,
    batch: batchOf('elasticsearchSink'),
  });
  if (esReport.deadLettered !== 2) throw new Error(`expected 2 dead letters from the sink, got ${JSON.stringify(esReport)}`);
  // And one the change history recorded, with a reason that is hostile itself.
  await store.put({ record: records(['{}'])[0]!, batch: batchOf('changeHistory'), reason: `history refused: ${HOSTILE}` });
  await es.index({ index: names.history, document: { Table: 'retail.orders_info', Column: 'amount' } });
  await es.index({ index: names.history, document: { Table: 'retail.orders_info', Column: 'city' } });
  await es.indices.refresh({ index: [names.index, names.history] });

  const env: Record<string, string> = {
    PGHOST: services.pg.host,
    PGPORT: String(services.pg.port),
    PGUSER: services.pg.user,
    PGDATABASE: services.pg.database,
    CDC_SLOT: names.slot,
    CDC_PUBLICATION: names.publication,
    CDC_STATE_SCHEMA: `${name}_state`,
    READER_METRICS_URL: readerUrl,
    KAFKA_BROKERS: services.kafkaBrokers.join(','),
    CDC_TOPIC: names.topic,
    ES_CONSUMER_GROUP: names.esGroup,
    HISTORY_CONSUMER_GROUP: names.historyGroup,
    ELASTICSEARCH_URL: services.elasticsearchUrl,
    CDC_ROUTES: JSON.stringify(routes),
    HISTORY_INDEX: names.history,
    AZURE_STORAGE_CONNECTION_STRING: services.azureStorageConnectionString,
    SINK_DEADLETTER_CONTAINER: names.container,
    STATUS_SOURCE_TIMEOUT_MS: '20000',
    STATUS_SAMPLE_INTERVAL_MS: '0',
  };
  return {
    env,
    names,
    pg: client,
    expected: {
      minLagBytes: Number(slotRow.lag),
      confirmedFlushLsn: slotRow.confirmed,
      restartLsn: slotRow.restart,
      readerChanges: 7,
      lastPublishedCommitTime: new Date(COMMIT_TS).toISOString(),
      partitionEnds: counts,
      esCommitted: [2, 3, null],
      esLag: 5 - 2 + (3 - 3) + 0,
      historyLag: 5 + 3 + 0,
      newestRecordTime: new Date(newestRecord).toISOString(),
      documents: 3,
      liveDocuments: 2,
      newestIndexed: new Date(newestIndexed).toISOString(),
      historyDocuments: 2,
      deadLetters: { elasticsearchSink: 2, changeHistory: 1 },
      endToEndLagMs: 1500,
    },
    close: async () => {
      for (const close of closers.reverse()) await close().catch(() => undefined);
    },
  };
}
