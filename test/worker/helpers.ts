/**
 * Test helpers for the sink worker: topics on the real broker, a worker in process or as a child
 * process (the real entry point), committed offsets as the broker has them, Elasticsearch indices.
 */
import { Admin, Producer } from '@platformatic/kafka';
import type { Client } from '@elastic/elasticsearch';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import type { Sink } from '../../src/shared/batch/types.js';
import { memoryLogger } from '../../src/shared/core/logger.js';
import type { DeadLetterDocument } from '../../src/shared/deadletter/types.js';
import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';
import type { SinkDefinition, SinkDeps } from '../../src/shared/sinks/registry.js';
import { loadWorkerConfig } from '../../src/worker/config.js';
import { Worker } from '../../src/worker/worker.js';
import { changeEvent, order } from '../helpers/events.js';
import { eventually, serviceEnv, uniqueName } from '../helpers/services.js';
import { testRoutes, uniqueIndex } from '../shared/esTestKit.js';
import { spawnEntryPoint, type ChildRun } from '../helpers/childProcess.js';
import { freePort } from '../services/services.mjs';

export { eventually, uniqueName };

const brokers = () => serviceEnv().kafkaBrokers;

export async function createTopic(name: string, partitions: number): Promise<void> {
  const admin = new Admin({ clientId: 'worker-test', bootstrapBrokers: brokers() });
  try {
    await admin.createTopics({ topics: [name], partitions, replicas: 1 });
  } finally {
    await admin.close();
  }
}

export async function deleteTopic(name: string): Promise<void> {
  const admin = new Admin({ clientId: 'worker-test', bootstrapBrokers: brokers() });
  await admin.deleteTopics({ topics: [name] }).catch(() => undefined);
  await admin.close();
}

export interface OutRecord {
  value: Buffer | string;
  partition: number;
  key?: string;
  headers?: Record<string, string>;
}

/**
 * Sends the records exactly once: idempotent, because a produce request to a topic created a moment
 * ago can fail for some partitions and the client then resends all of it, which would shift the
 * offsets the tests expect.
 */
export async function produce(topic: string, records: OutRecord[]): Promise<void> {
  const producer = new Producer({ clientId: 'worker-test', bootstrapBrokers: brokers(), acks: -1, idempotent: true });
  try {
    await producer.send({
      messages: records.map((r) => ({
        topic,
        partition: r.partition,
        value: Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value),
        ...(r.key === undefined ? {} : { key: Buffer.from(r.key) }),
        ...(r.headers === undefined ? {} : { headers: new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])) }),
      })),
    });
  } finally {
    await producer.close();
  }
}

/** `retail.orders_info` inserts of orders `first..first+count-1` with increasing LSNs, spread over `partitions` (order id mod partitions). */
export function orderEvents(first: number, count: number, partitions: number, table = 'retail.orders_info'): { event: ChangeEvent; record: OutRecord }[] {
  return Array.from({ length: count }, (_, i) => {
    const id = first + i;
    const event =
      table === 'retail.orders_info'
        ? changeEvent({ after: order(id), lsn: 1_000_000 + id * 8 })
        : changeEvent({ table, after: { holding_id: id, holding_stock: 'VFIAX', holding_quantity: id, user_id: 1 }, lsn: 1_000_000 + id * 8 });
    return { event, record: { value: JSON.stringify(event), partition: id % partitions, key: JSON.stringify(event.key) } };
  });
}

/** Committed offsets of a group on a topic, by partition (absent: nothing committed). */
export async function committedOffsets(group: string, topic: string): Promise<Map<number, bigint>> {
  const admin = new Admin({ clientId: 'worker-test', bootstrapBrokers: brokers() });
  try {
    const [result] = await admin.listConsumerGroupOffsets({ groups: [group] });
    const out = new Map<number, bigint>();
    for (const t of result?.topics ?? []) {
      if (t.name !== topic) continue;
      for (const p of t.partitions) if (p.committedOffset >= 0n) out.set(p.partitionIndex, p.committedOffset);
    }
    return out;
  } finally {
    await admin.close();
  }
}

export interface TestNames {
  topic: string;
  index: string;
  holdingIndex: string;
  container: string;
  group: string;
}

export function testNames(prefix: string): TestNames {
  const base = uniqueIndex(prefix);
  return { topic: base, index: base, holdingIndex: `${base}-holding`, container: base.slice(0, 63), group: `${base}-es` };
}

/** Environment of a worker on the test services: its own topic, group, indices and dead-letter container. */
export function workerEnv(names: TestNames, extra: Record<string, string> = {}): Record<string, string> {
  const env = serviceEnv();
  return {
    KAFKA_BROKERS: env.kafkaBrokers.join(','),
    CDC_TOPIC: names.topic,
    WORKER_SINKS: 'elasticsearchSink',
    ES_CONSUMER_GROUP: names.group,
    HISTORY_CONSUMER_GROUP: `${names.group}-history`,
    ELASTICSEARCH_URL: env.elasticsearchUrl,
    ES_NUMBER_OF_REPLICAS: '0',
    ES_CONTROL_INDEX: `${names.index}-control`,
    ES_BULK_MAX_ATTEMPTS: '1',
    HISTORY_INDEX: `${names.index}-history`,
    CDC_ROUTES: JSON.stringify(testRoutes(names.index, names.holdingIndex)),
    AZURE_STORAGE_CONNECTION_STRING: env.azureStorageConnectionString,
    SINK_DEADLETTER_CONTAINER: names.container,
    CDC_RETRY_MIN_INTERVAL_SECONDS: '1',
    CDC_RETRY_MAX_INTERVAL_SECONDS: '1',
    WORKER_MAX_WAIT_MS: '100',
    KAFKA_SESSION_TIMEOUT_MS: '10000',
    HEALTH_PORT: '0',
    ...extra,
  };
}

export function indicesOf(names: TestNames): string[] {
  return [names.index, names.holdingIndex, `${names.index}-control`, `${names.index}-history`];
}

export function deadLetterContainer(names: TestNames): ContainerClient {
  return BlobServiceClient.fromConnectionString(serviceEnv().azureStorageConnectionString).getContainerClient(names.container);
}

export async function deadLetters(container: ContainerClient): Promise<{ name: string; doc: DeadLetterDocument }[]> {
  const out: { name: string; doc: DeadLetterDocument }[] = [];
  if (!(await container.exists())) return out;
  for await (const blob of container.listBlobsFlat()) {
    const buffer = await container.getBlobClient(blob.name).downloadToBuffer();
    out.push({ name: blob.name, doc: JSON.parse(buffer.toString()) as DeadLetterDocument });
  }
  return out;
}

/**
 * Holds a sink's writes: each batch that reaches `write` waits for its own `releaseOne()` (or for
 * `releaseAll()`), so a test decides when a batch in flight may finish. Records every batch it saw.
 */
export interface Gate {
  wrap(deps: SinkDeps): SinkDeps;
  /** Batches that reached `write`, as their record offsets (retries included). */
  readonly seen: string[][];
  releaseOne(): void;
  releaseAll(): void;
}

export function gate(): Gate {
  const waiting: (() => void)[] = [];
  let tickets = 0;
  let open = false;
  const seen: string[][] = [];
  return {
    seen,
    wrap(deps) {
      const inner = deps.sink;
      const sink: Sink<unknown> = {
        name: inner.name,
        prepare: (event, record) => inner.prepare(event, record),
        write: async (records, batch, context) => {
          seen.push(records.map((r) => r.record.offset));
          if (!open) {
            if (tickets > 0) tickets--;
            else await new Promise<void>((resolve) => waiting.push(resolve));
          }
          return inner.write(records, batch, context);
        },
      };
      return { ...deps, sink };
    },
    releaseOne() {
      const next = waiting.shift();
      if (next) next();
      else tickets++;
    },
    releaseAll() {
      open = true;
      for (const resolve of waiting.splice(0)) resolve();
    },
  };
}

export interface RunningWorker {
  worker: Worker;
  log: ReturnType<typeof memoryLogger>;
  stop(): Promise<void>;
  /** Sizes of the batches handled (from the batch core's log line per batch attempt). */
  batchSizes(): number[];
  /** Partitions currently assigned to the sink. */
  assigned(sink?: string): number[];
}

/** A worker in this process, built as main.ts builds it (deps from the environment), optionally with wrapped deps. */
export async function startWorker(
  env: Record<string, string>,
  wrap: (deps: SinkDeps, definition: SinkDefinition) => SinkDeps = (d) => d,
): Promise<RunningWorker> {
  const config = loadWorkerConfig(env);
  const log = memoryLogger();
  const worker = new Worker({ config, deps: (definition) => wrap(definition.depsFromEnv(env, log), definition), logger: log });
  await worker.start();
  return {
    worker,
    log,
    stop: () => worker.stop(),
    batchSizes: () =>
      log.lines
        .map((l) => /: (\d+) records, \d+ ok/.exec(String(l.msg)))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => Number(m[1])),
    assigned: (sink = 'elasticsearchSink') => {
      const consumer = worker.consumers.find((c) => c.name === sink);
      return consumer ? [...consumer.metrics.partitions.keys()].sort((a, b) => a - b) : [];
    },
  };
}

/** Documents of an index by id, with their versions. */
export async function documents(client: Client, index: string): Promise<Map<string, { version: number; source: Record<string, unknown> }>> {
  await client.indices.refresh({ index, ignore_unavailable: true });
  const result = await client.search<Record<string, unknown>>({ index, size: 10_000, version: true, query: { match_all: {} } }, { ignore: [404] });
  return new Map((result.hits?.hits ?? []).map((h) => [h._id!, { version: h._version ?? -1, source: h._source ?? {} }]));
}

/** Index operations of an index: successful ones, and those refused as version conflicts (duplicates). */
export async function indexingStats(client: Client, index: string): Promise<{ indexed: number; versionConflicts: number }> {
  const stats = (await client.indices.stats({ index, metric: 'indexing' })) as unknown as {
    _all: { primaries: { indexing: { index_total: number; index_failed_due_to_version_conflict?: number } } };
  };
  const indexing = stats._all.primaries.indexing;
  return { indexed: indexing.index_total, versionConflicts: indexing.index_failed_due_to_version_conflict ?? 0 };
}

export type ChildWorker = ChildRun;

/** Runs the real entry point (src/worker/main.ts) as a child process. */
export function spawnWorker(env: Record<string, string>): ChildWorker {
  return spawnEntryPoint('src/worker/main.ts', env);
}

/** A TCP port nobody listens on right now (for a child's HEALTH_PORT). */
export { freePort };
