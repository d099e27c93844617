/**
 * `npm run bench:sinks`: Elasticsearch sink throughput through the real handler (trigger-shaped
 * batches of Buffer bodies, JSON decode, unwrap, versioned bulk, item checks) against the client's own `helpers.bulk`
 * indexing the same documents on the same cluster in the same run. Writes `esDocsPerSec`,
 * `helpersBulkDocsPerSec` and `esRatio` into bench/results/sinks.json, keeping the other keys there
 * (the ADX figures). Needs ELASTICSEARCH_URL (read from .services.env when unset).
 *
 * Settings: BENCH_ES_DOCS (50000), BENCH_BATCH (host.json maxEventBatchSize), BENCH_PARTITIONS (4:
 * invocations in flight, one per partition, like the host), BENCH_ROUNDS (5). `esRatio` is the median
 * of the per-round ratios (paired runs, alternating order). Both writers start on an index that is
 * ready for them: `helpers.bulk`'s is created before its timer, the handler's first invocation (the
 * sink's per-index setup) is timed apart as `esFirstBatchMs`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
// @azure/functions is CommonJS and its InvocationContext is not a detectable named export in Node ESM.
import functions from '@azure/functions';
import { Client } from '@elastic/elasticsearch';
import type { estypes } from '@elastic/elasticsearch';
import type { ChangeEvent } from '../src/shared/events/changeEvent.js';
import { unwrap } from '../src/shared/events/unwrap.js';
import { MemoryDeadLetterStore } from '../src/shared/deadletter/memoryDeadLetterStore.js';
import { ElasticsearchSink } from '../src/shared/elasticsearch/elasticsearchSink.js';
import { createEventHubBatchHandler } from '../src/functions/host/eventHubBatchHandler.js';
import { lazy } from '../src/shared/core/lazy.js';
import { DEFAULT_ROUTES, Router } from '../src/shared/routing/routes.js';

const RESULTS = 'bench/results/sinks.json';
const { InvocationContext } = functions;

function loadServicesEnv(): void {
  if (process.env.ELASTICSEARCH_URL || !existsSync('.services.env')) return;
  for (const line of readFileSync('.services.env', 'utf8').split('\n')) {
    const match = /^([A-Z_]+)=(.*)$/.exec(line);
    if (match?.[1] && match[2] !== undefined) process.env[match[1]] ??= match[2];
  }
}

const int = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

/**
 * CPU seconds so far of this process and of Elasticsearch (its process, from `/proc/<pid>/stat`, the pid
 * from the nodes API; null when it runs elsewhere): on this 2-core machine both writers' rates are set
 * by the CPU they and the server spend per document.
 */
type CpuMark = { bench: number; es: number | null };
const CLOCK_TICKS = 100;
let esPid: number | null | undefined;
async function cpuMark(client: Client): Promise<CpuMark> {
  if (esPid === undefined) {
    const nodes = Object.values((await client.nodes.info({ metric: 'process' })).nodes);
    const pid = nodes.length === 1 ? nodes[0]?.process?.id : undefined;
    esPid = pid !== undefined && existsSync(`/proc/${pid}/stat`) ? pid : null;
  }
  let es: number | null = null;
  if (esPid !== null) {
    // Fields 14 and 15 (utime, stime) in clock ticks, counted after the parenthesised command name (as
    // bench/snapshot.mjs `cpuOf` reads them).
    const stat = readFileSync(`/proc/${esPid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    es = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  }
  const usage = process.cpuUsage();
  return { bench: (usage.user + usage.system) / 1e6, es };
}
/** µs of CPU per document between two marks. */
function cpuPerDoc(from: CpuMark, to: CpuMark, docs: number): { bench: number; es: number | null } {
  return { bench: ((to.bench - from.bench) / docs) * 1e6, es: from.es === null || to.es === null ? null : ((to.es - from.es) / docs) * 1e6 };
}
type Run = { rate: number; cpu: { bench: number; es: number | null } };

const CITIES = ['Austin', 'Chicago', 'New York', 'Seattle', 'Denver'];
function events(count: number, lsnBase: number): ChangeEvent[] {
  return Array.from({ length: count }, (_, i) => ({
    before: null,
    after: { orderid: i + 1, custid: (i * 7) % 1000, amount: (i * 13) % 500, city: CITIES[i % CITIES.length], purchase_time: '2020-10-09 07:23:10' },
    source: {
      version: 'bench',
      connector: 'postgresql',
      name: 'bench',
      ts_ms: 1_700_000_000_000 + i,
      snapshot: 'false',
      db: 'postgres',
      schema: 'retail',
      table: 'orders_info',
      txId: i,
      lsn: lsnBase + i * 64,
      sequence: null,
      // As the reader sends it for this table (int and varchar columns: none to name).
      types: {},
    },
    op: 'c',
    ts_ms: 1_700_000_000_000 + i,
    key: { orderid: i + 1 },
  }));
}

function routes(index: string) {
  const base = DEFAULT_ROUTES['retail.orders_info'];
  return new Router({ 'retail.orders_info': { ...base, elasticsearch: { index, properties: base?.elasticsearch?.properties ?? {} } } });
}

/** One invocation as the host makes it: `chunk` from `partition`, at offsets from `offset`. */
async function invoke(handler: ReturnType<typeof createEventHubBatchHandler>, chunk: unknown[], partition: number, offset: number): Promise<void> {
  const context = new InvocationContext({
    functionName: 'elasticsearchSink',
    logHandler: () => undefined,
    triggerMetadata: {
      partitionContext: { partitionId: String(partition), consumerGroup: 'bench', eventHubName: 'bench' },
      offsetArray: chunk.map((_, i) => offset + i),
      sequenceNumberArray: chunk.map((_, i) => offset + i),
      enqueuedTimeUtcArray: chunk.map(() => new Date().toISOString()),
    },
  });
  const report = await handler(chunk, context);
  if (report.ok !== chunk.length) throw new Error(`handler wrote ${report.ok} of ${chunk.length}`);
}

/**
 * The handler's rate, and how long its first invocation on the new index took. That first one, one
 * event of a key outside the measured range, is not timed: it is the sink's once-per-index-and-process
 * setup (claiming the index in the control index, which creates that, reading the index versions,
 * creating the index and putting its field mappings), as `helpers.bulk`'s index is created before its
 * timer. A long-running consumer pays it once; the rate is the steady state both writers are compared in.
 */
async function viaHandler(client: Client, index: string, all: ChangeEvent[], batchSize: number, partitions: number): Promise<Run & { firstMs: number }> {
  const sink = new ElasticsearchSink({ client, router: routes(index), templates: { replicas: 0 }, controlIndex: `${index}-control` });
  const handler = createEventHubBatchHandler(lazy(() => ({ sink, deadLetters: new MemoryDeadLetterStore() })));
  // Bodies as the host hands them over with dataType 'binary' (Buffers), split across partitions.
  const bodies = all.map((e) => Buffer.from(JSON.stringify(e)));
  const perPartition: unknown[][] = Array.from({ length: partitions }, () => []);
  bodies.forEach((b, i) => perPartition[i % partitions]?.push(b));
  await sink.ensureTemplates();
  const [first] = events(1, 0);
  if (!first) throw new Error('no event');
  const setup = performance.now();
  await invoke(handler, [Buffer.from(JSON.stringify({ ...first, after: { ...first.after, orderid: 0 }, key: { orderid: 0 } }))], 0, 0);
  const firstMs = performance.now() - setup;
  const mark = await cpuMark(client);
  const started = performance.now();
  await Promise.all(
    perPartition.map(async (list, p) => {
      for (let offset = 0; offset < list.length; offset += batchSize) await invoke(handler, list.slice(offset, offset + batchSize), p, offset + 1);
    }),
  );
  const rate = (all.length / (performance.now() - started)) * 1000;
  return { rate, cpu: cpuPerDoc(mark, await cpuMark(client), all.length), firstMs };
}

/** The document the sink writes (unwrapped row + metadata), for helpers.bulk; `withDeleted`: with the sink's `__deleted` too. */
function plainDocument(e: ChangeEvent, withDeleted = false): { id: string; version: number; doc: Record<string, unknown> } {
  const u = unwrap(e);
  const doc = u.kind === 'truncate' ? {} : { ...u.row, ...(withDeleted ? { __deleted: false } : {}), __version: e.source.lsn };
  return { id: String(e.key?.orderid), version: e.source.lsn ?? 0, doc };
}

/**
 * `helpers.bulk` as above; `flushBytes` set: requests of that size instead of the client's default
 * 5 MB. Used with the handler's request size (`batchSize` documents) to tell the cost of the request
 * size from the sink's own work: Elasticsearch pays per bulk request (a translog fsync each), and a
 * Functions invocation's batch is one request.
 */
async function viaHelpersBulk(
  client: Client,
  index: string,
  all: ChangeEvent[],
  partitions: number,
  flushBytes?: number,
  asTheSink?: { mappings: estypes.MappingTypeMapping | undefined },
): Promise<Run> {
  // `asTheSink`: the sink's own actions and documents (an external version on each, `__deleted`) into
  // an index with the sink's mapping, without the sink.
  const docs = all.map((e) => plainDocument(e, asTheSink !== undefined));
  await client.indices.create({
    index,
    settings: { number_of_replicas: 0, number_of_shards: 1 },
    ...(asTheSink?.mappings ? { mappings: asTheSink.mappings } : {}),
  });
  const mark = await cpuMark(client);
  const started = performance.now();
  const stats = await client.helpers.bulk({
    datasource: docs,
    concurrency: partitions,
    ...(flushBytes === undefined ? {} : { flushBytes }),
    onDocument: (d) => [
      asTheSink ? { index: { _index: index, _id: d.id, version: d.version, version_type: 'external' as const } } : { index: { _index: index, _id: d.id } },
      d.doc,
    ],
    onDrop: (d) => {
      throw new Error(`helpers.bulk dropped a document: ${JSON.stringify(d.error)}`);
    },
  });
  const rate = (all.length / (performance.now() - started)) * 1000;
  if (stats.successful !== all.length) throw new Error(`helpers.bulk wrote ${stats.successful} of ${all.length}`);
  return { rate, cpu: cpuPerDoc(mark, await cpuMark(client), all.length) };
}

loadServicesEnv();
const url = process.env.ELASTICSEARCH_URL;
if (!url) throw new Error('ELASTICSEARCH_URL is not set (start the services: npm run services:up)');
const client = new Client({ node: url });
const total = int('BENCH_ES_DOCS', 50_000);
const hostJson = JSON.parse(readFileSync('host.json', 'utf8')) as { extensions?: { eventHubs?: { maxEventBatchSize?: number } } };
const batchSize = int('BENCH_BATCH', hostJson.extensions?.eventHubs?.maxEventBatchSize ?? 100);
const partitions = int('BENCH_PARTITIONS', 4);
const rounds = int('BENCH_ROUNDS', 5);
const prefix = `bench-sinks-${Date.now().toString(36)}`;
const writers = ['handler', 'helpersBulk', 'helpersBulkSameRequests', 'helpersBulkSinkRequests'] as const;
const runsOf: Record<(typeof writers)[number], Run[]> = { handler: [], helpersBulk: [], helpersBulkSameRequests: [], helpersBulkSinkRequests: [] };
const firstBatchMs: number[] = [];
// The NDJSON bytes of `batchSize` documents as helpers.bulk writes them: its requests then hold about
// as many documents as one of the handler's.
const sameRequestBytes = events(batchSize, 0)
  .map((e) => plainDocument(e))
  .reduce((n, d) => n + Buffer.byteLength(`${JSON.stringify({ index: { _index: 'x', _id: d.id } })}\n${JSON.stringify(d.doc)}\n`), 0);
try {
  // Warm-up (JIT, templates, connection pool), not measured.
  await viaHandler(client, `${prefix}-warm`, events(2000, 1000), batchSize, partitions);
  await viaHelpersBulk(client, `${prefix}-warm-helpers`, events(2000, 1000), partitions);
  // The sink's mapping (its index template's), for the writer that sends the sink's requests without it.
  const sinkMappings = Object.values(await client.indices.getMapping({ index: `${prefix}-warm` }))[0]?.mappings;
  // Paired rounds in alternating order: the machine is shared, so each round's ratio compares two
  // runs made seconds apart, and the median of those ratios is the figure.
  for (let round = 0; round < rounds; round++) {
    const all = events(total, 1_000_000 * (round + 1));
    const runs = [
      async () => runsOf.helpersBulk.push(await viaHelpersBulk(client, `${prefix}-helpers-${round}`, all, partitions)),
      async () => {
        const run = await viaHandler(client, `${prefix}-handler-${round}`, all, batchSize, partitions);
        runsOf.handler.push(run);
        firstBatchMs.push(run.firstMs);
      },
      async () => runsOf.helpersBulkSameRequests.push(await viaHelpersBulk(client, `${prefix}-helpers-same-${round}`, all, partitions, sameRequestBytes)),
      async () =>
        runsOf.helpersBulkSinkRequests.push(
          await viaHelpersBulk(client, `${prefix}-helpers-sink-${round}`, all, partitions, sameRequestBytes, { mappings: sinkMappings }),
        ),
    ];
    for (const run of round % 2 === 0 ? runs : runs.reverse()) await run();
    await client.indices.delete({ index: `${prefix}-*-${round}` }).catch(() => undefined);
  }
} finally {
  await client.indices.delete({ index: `${prefix}-*` }).catch(() => undefined);
  await client.indices.deleteIndexTemplate({ name: `cdc-table-${prefix}-*` }).catch(() => undefined);
  await client.close();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const handlerRates = runsOf.handler.map((r) => r.rate);
const helperRates = runsOf.helpersBulk.map((r) => r.rate);
const sameRequestRates = runsOf.helpersBulkSameRequests.map((r) => r.rate);
const sinkRequestRates = runsOf.helpersBulkSinkRequests.map((r) => r.rate);
const round1 = (x: number) => Math.round(x * 10) / 10;
// Median µs of CPU per document of this process and of Elasticsearch, per writer.
const cpuUsPerDoc = Object.fromEntries(
  writers.map((w) => {
    const es = runsOf[w].flatMap((r) => (r.cpu.es === null ? [] : [r.cpu.es]));
    return [w, { bench: round1(median(runsOf[w].map((r) => r.cpu.bench))), elasticsearch: es.length > 0 ? round1(median(es)) : null }];
  }),
);
const es = Math.round(median(handlerRates));
const helpers = Math.round(median(helperRates));
const previous: Record<string, unknown> = existsSync(RESULTS) ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as Record<string, unknown>) : {};
const result = {
  ...previous,
  measuredAt: new Date().toISOString(),
  node: process.version,
  esDocs: total,
  esBatch: batchSize,
  esPartitions: partitions,
  esRounds: rounds,
  esDocsPerSec: es,
  helpersBulkDocsPerSec: helpers,
  esRatio: Math.round(median(handlerRates.map((h, i) => h / (helperRates[i] ?? h))) * 100) / 100,
  // The handler's first invocation on a new index (one event: the sink's per-index setup), not in its rate.
  esFirstBatchMs: Math.round(median(firstBatchMs)),
  esCpuUsPerDoc: cpuUsPerDoc,
  esRoundsDocsPerSec: {
    handler: handlerRates.map(Math.round),
    helpersBulk: helperRates.map(Math.round),
    helpersBulkSameRequests: sameRequestRates.map(Math.round),
    helpersBulkSinkRequests: sinkRequestRates.map(Math.round),
  },
  // The same ratio against helpers.bulk sending requests of the handler's size (`flushBytes`).
  helpersBulkSameRequestsDocsPerSec: Math.round(median(sameRequestRates)),
  helpersBulkSameRequestsFlushBytes: sameRequestBytes,
  esRatioSameRequests: Math.round(median(handlerRates.map((h, i) => h / (sameRequestRates[i] ?? h))) * 100) / 100,
  // helpers.bulk sending the sink's own actions (external versions) and documents in requests of the
  // handler's size into an index with the sink's mapping: what Elasticsearch's share of the sink's work costs.
  helpersBulkSinkRequestsDocsPerSec: Math.round(median(sinkRequestRates)),
  esRatioSinkRequests: Math.round(median(handlerRates.map((h, i) => h / (sinkRequestRates[i] ?? h))) * 100) / 100,
};
mkdirSync('bench/results', { recursive: true });
writeFileSync(RESULTS, JSON.stringify(result, null, 2) + '\n');
process.stdout.write(
  `bench:sinks: handler ${es} docs/s, helpers.bulk ${helpers} docs/s, esRatio ${result.esRatio}; helpers.bulk in requests of ${batchSize} documents ${result.helpersBulkSameRequestsDocsPerSec} docs/s, ratio ${result.esRatioSameRequests}; the sink's requests without the sink ${result.helpersBulkSinkRequestsDocsPerSec} docs/s, ratio ${result.esRatioSinkRequests}\n` +
    `bench:sinks: CPU µs per document (this process / Elasticsearch): ${writers.map((w) => `${w} ${cpuUsPerDoc[w]?.bench} / ${cpuUsPerDoc[w]?.elasticsearch ?? '?'}`).join(', ')}\n`,
);
