/**
 * `npm run bench:e2e`: the whole pipeline on services of its own (test/e2e/harness.ts), the worker
 * from the build (`dist/src/worker/main.js`, as deployed). Writes bench/results/e2e.json:
 *
 * - `faults`: each fault kind on its own, then all of them mixed in one long run under a continuous
 *   workload; per kind the committed changes (`written`), the distinct changes that reached the topic
 *   and every sink (`delivered`), `lost` (committed, not on the topic), the duplicates on the topic
 *   and the writes Elasticsearch refused as not newer (both absorbed: `differences` is what
 *   `verifyPipeline` found after recovery, and must be 0). Full worker: Elasticsearch sink, change
 *   history, ADX sink against the Kusto stand-in.
 * - then a worker with the Elasticsearch sink alone (`WORKER_SINKS=elasticsearchSink`) on a table
 *   routed to Elasticsearch only (`e2e.bench`), in rounds, each the same N changes (inserts in
 *   transactions of 1,000 rows):
 *   - `readerOnlyPerSec`: the worker stopped, N / (first commit → the slot confirms the last);
 *   - `changesPerSec`: reader and worker running, N / (first commit → the Elasticsearch sink has
 *     committed the topic's end);
 *   - `helpersBulkDocsPerSec`: the client's own `helpers.bulk` writing N documents of the same
 *     shape (the commit time fractional like the reader's) into a fresh index of the same settings and
 *     the sink's own mapping, on the same Elasticsearch;
 *   - `e2eRatio` = changesPerSec / min(readerOnlyPerSec, helpersBulkDocsPerSec), each the median
 *     of its rounds;
 *   - `cpuMicrosPerChange`: per phase, the CPU each part used (PostgreSQL, Kafka, Elasticsearch,
 *     the reader, the worker, this process) in µs per change: what the 2 cores spent where.
 * - `p50Ms`, `p99Ms`: commit → searchable in `-live`, at a fixed 2,000 changes/s (200 rows per
 *   transaction every 100 ms); each transaction's rows polled every 50 ms.
 * - `workerPeakRssMb`: the highest VmHWM of the worker processes over the whole run.
 *
 * Settings: BENCH_E2E_CHANGES (300000), BENCH_E2E_ROUNDS (3), BENCH_E2E_LATENCY_SECONDS (30),
 * BENCH_E2E_MIXED_SECONDS (60), BENCH_E2E_RECOVERY_SECONDS (900), BENCH_E2E_FAULTS (on; off: see WITH_FAULTS), BENCH_CPU_PROF (see WORKER_PROFILE_FLAGS). Targets (issue 10): lost = 0, e2eRatio ≥ 0.8, p99 ≤ 1,500 ms,
 * workerPeakRssMb ≤ 256.
 */
import { Client } from '@elastic/elasticsearch';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import type pg from 'pg';
import {
  faultRun,
  killWorkerMidBatch,
  pgConnect,
  sleep,
  startPipeline,
  stopPipeline,
  Supervised,
  until,
  waitCaughtUp,
  workloadSlice,
  type CheckResult,
  type FaultFigures,
  type Pipeline,
} from '../test/e2e/harness.js';

const RESULTS = 'bench/results/e2e.json';
const int = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
// Large enough that the pipeline's latency (the last change's ~1 s from commit to the sink's commit)
// is a small part of each round: at 50,000 it was a third of the e2e time.
const N = int('BENCH_E2E_CHANGES', 300_000);
const ROUNDS = int('BENCH_E2E_ROUNDS', 3);
const LATENCY_SECONDS = int('BENCH_E2E_LATENCY_SECONDS', 30);
const MIXED_SECONDS = int('BENCH_E2E_MIXED_SECONDS', 60);
/** Longest a fault's recovery may take before the run fails (the machine may be shared: see loadAverage). */
const RECOVERY_SECONDS = int('BENCH_E2E_RECOVERY_SECONDS', 900);
/**
 * BENCH_E2E_FAULTS=off skips the fault phase, for a quick look at the throughput, latency and memory of
 * the Elasticsearch sink alone while working on them; such a run writes RESULTS_NO_FAULTS, never
 * RESULTS, whose figures always include the faults.
 */
const WITH_FAULTS = process.env.BENCH_E2E_FAULTS !== 'off';
const RESULTS_NO_FAULTS = 'bench/results/e2e-nofaults.json';
const RATE = 2_000;
const TICK_MS = 100;
const BENCH_TABLE = 'e2e.bench';
const BENCH_INDEX = 'e2e-bench';
const WORKER_ENTRY = 'dist/src/worker/main.js';

/** The lines of a Dockerfile stage. */
function imageStage(stage: string): string {
  const dockerfile = readFileSync('Dockerfile', 'utf8');
  const body = new RegExp(`^FROM \\S+ AS ${stage}\n([\\s\\S]*?)(?=^FROM |$(?![\\s\\S]))`, 'm').exec(dockerfile)?.[1];
  if (body === undefined) throw new Error(`no stage ${stage} in the Dockerfile`);
  return body;
}

/**
 * The Node flags of an image's CMD (its Dockerfile stage), so the benchmark runs the worker as deployed,
 * heap limits included; only the unindented `CMD [...]` line (the HEALTHCHECK's is indented).
 */
function imageNodeFlags(stage: string): string {
  const cmd = /^CMD (\[.*\])$/m.exec(imageStage(stage))?.[1];
  if (cmd === undefined) throw new Error(`no CMD [...] in stage ${stage} of the Dockerfile`);
  const argv = JSON.parse(cmd) as string[];
  if (argv[0] !== 'node' || argv.at(-1) !== WORKER_ENTRY) throw new Error(`stage ${stage}'s CMD is not node <flags> ${WORKER_ENTRY}: ${cmd}`);
  return argv.slice(1, -1).join(' ');
}
const WORKER_NODE_OPTIONS = imageNodeFlags('worker');
/**
 * The allocator settings of the image's `ENV` lines (`MALLOC_*`, read by glibc at process start), so the
 * worker's RSS is the image's; its other variables (ports, NODE_ENV) are the harness's to set.
 */
const WORKER_IMAGE_ENV = Object.fromEntries(
  [...imageStage('worker').matchAll(/^ENV (.+)$/gm)]
    .flatMap((m) => m[1]!.split(/\s+/).map((kv) => kv.split('=', 2) as [string, string]))
    .filter(([k]) => k.startsWith('MALLOC_')),
);
/** BENCH_CPU_PROF=<dir>: a V8 CPU profile of each worker process there, written when it stops (profiling, not for figures). */
const WORKER_PROFILE_FLAGS = process.env.BENCH_CPU_PROF ? ` --cpu-prof --cpu-prof-dir=${process.env.BENCH_CPU_PROF}` : '';

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const log = (msg: string) => process.stdout.write(`[bench:e2e] ${msg}\n`);

/** Peak RSS (VmHWM) of every worker process seen, sampled twice a second (a killed worker keeps its last sample). */
let peakRssKb = 0;
function sampleRss(p: Pipeline): void {
  const pid = p.worker.current?.proc.pid;
  if (pid === undefined) return;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    if (m) peakRssKb = Math.max(peakRssKb, Number(m[1]));
  } catch {
    // the process just exited
  }
}

type Role = 'postgres' | 'kafka' | 'elasticsearch' | 'reader' | 'worker' | 'bench';
const ROLES: readonly Role[] = ['postgres', 'kafka', 'elasticsearch', 'reader', 'worker', 'bench'];

/** utime + stime in seconds of `pid` and every process below it (PostgreSQL's backends, the JVM under Elasticsearch's launcher). */
function treeCpuSeconds(root: number | undefined, children: Map<number, number[]>, own: Map<number, number>): number {
  if (root === undefined) return 0;
  let total = 0;
  for (const stack = [root]; stack.length > 0;) {
    const pid = stack.pop()!;
    total += own.get(pid) ?? 0;
    stack.push(...(children.get(pid) ?? []));
  }
  return total;
}

/**
 * CPU seconds used so far by each part of the pipeline (living processes only: a phase's figure is
 * the difference of two snapshots, with nothing started or killed in between). On 2 cores they all
 * share the same CPU, so these say where a phase's time went.
 */
function cpuSnapshot(p: Pipeline): Record<Role, number> {
  const own = new Map<number, number>();
  const children = new Map<number, number[]>();
  const ticks = 100; // USER_HZ on Linux
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const pid = Number(entry);
      const ppid = Number(fields[1]);
      own.set(pid, (Number(fields[11]) + Number(fields[12])) / ticks);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      // exited meanwhile
    }
  }
  const state = JSON.parse(readFileSync(join(p.services.stateDir, '.services.state.json'), 'utf8')) as { services: Record<string, { pid?: number }> };
  const service = (name: string) => treeCpuSeconds(state.services[name]?.pid, children, own);
  const usage = process.cpuUsage();
  return {
    postgres: service('postgres'),
    kafka: service('kafka'),
    elasticsearch: service('elasticsearch'),
    reader: treeCpuSeconds(p.reader.current?.proc.pid, children, own),
    worker: treeCpuSeconds(p.worker.current?.proc.pid, children, own),
    bench: (usage.user + usage.system) / 1e6,
  };
}

/** CPU µs per change of each part between two snapshots. */
function cpuPerChange(before: Record<Role, number>, after: Record<Role, number>, changes: number): Record<Role, number> {
  return Object.fromEntries(ROLES.map((r) => [r, Math.round(((after[r] - before[r]) * 1e6) / changes)])) as Record<Role, number>;
}

/** The median of each part over the rounds. */
function medianPerRole(rounds: Record<Role, number>[]): Record<Role, number> {
  return Object.fromEntries(ROLES.map((r) => [r, Math.round(median(rounds.map((x) => x[r])))])) as Record<Role, number>;
}

let c: pg.Client;
async function reconnect(p: Pipeline): Promise<void> {
  await c?.end().catch(() => undefined);
  c = await until('PostgreSQL', () => pgConnect(p.services), 60_000);
  c.on('error', () => undefined);
}

let round = 0;
let last: CheckResult | undefined;
const faults: Record<string, FaultFigures> = {};

async function fault(p: Pipeline, name: string, run: () => Promise<void>): Promise<void> {
  const { figures, result } = await faultRun(p, last, run, RECOVERY_SECONDS * 1000);
  last = result;
  faults[name] = figures;
  log(`${name}: ${JSON.stringify(faults[name])}`);
  if (result.differences > 0) log(result.report.format());
}

const readerKill = async (p: Pipeline) => {
  const starts = p.reader.starts;
  p.reader.kill9();
  await until('the supervisor to restart the reader', () => Promise.resolve(p.reader.starts > starts ? true : undefined), 30_000);
};
const kafkaStop = async (p: Pipeline) => {
  await p.services.stop('kafka');
  await sleep(20_000);
  await p.services.start('kafka');
};
const elasticsearchStop = async (p: Pipeline) => {
  await p.services.stop('elasticsearch');
  await sleep(30_000);
  await p.services.start('elasticsearch');
};
const postgresRestart = async (p: Pipeline) => {
  await p.services.stop('postgres');
  await p.services.start('postgres');
};

/**
 * Workload slices, one a second, until `stop` resolves, surviving the loss of its session (PostgreSQL
 * restarted). Paced: unpaced, the slices (whose updates touch a share of each growing table) made
 * about 900,000 changes during a Kafka stop of 20 s, far beyond what the fault is about.
 */
async function workloadUntil(p: Pipeline, stop: Promise<void>): Promise<void> {
  let done = false;
  void stop.then(() => (done = true));
  while (!done) {
    try {
      await workloadSlice(c, round++);
    } catch {
      await reconnect(p);
    }
    await sleep(1000);
  }
}

async function faultsPhase(p: Pipeline): Promise<void> {
  await fault(p, 'none', async () => {
    for (let i = 0; i < 3; i++) await workloadSlice(c, round++);
  });
  await fault(p, 'readerKill9x5', async () => {
    for (let kill = 0; kill < 5; kill++) {
      const work = (async () => {
        for (let i = 0; i < 2; i++) await workloadSlice(c, round++);
      })();
      await sleep(200 + Math.floor(Math.random() * 1500));
      await readerKill(p);
      await work;
    }
  });
  await fault(p, 'workerKill9MidBatch', async () => {
    await c.query(`INSERT INTO e2e.keyless SELECT i, 'burst' FROM generate_series(1, 5000) i`);
    await workloadSlice(c, round++, 2000);
    await killWorkerMidBatch(p);
    await workloadSlice(c, round++);
  });
  await fault(p, 'kafkaStop20s', async () => {
    const stopped = kafkaStop(p);
    await workloadUntil(p, stopped);
  });
  await fault(p, 'elasticsearchStop30s', async () => {
    const stopped = elasticsearchStop(p);
    await workloadUntil(p, stopped);
  });
  await fault(p, 'postgresRestart', async () => {
    await workloadSlice(c, round++);
    await postgresRestart(p);
    await reconnect(p);
    await workloadSlice(c, round++);
  });
  // All of them, in a random order, at random moments, under a continuous workload.
  await fault(p, 'mixed', async () => {
    const kinds: (() => Promise<unknown>)[] = [
      ...Array.from({ length: 5 }, () => () => readerKill(p)),
      () => killWorkerMidBatch(p),
      () => kafkaStop(p),
      () => elasticsearchStop(p),
      () => postgresRestart(p),
    ].sort(() => Math.random() - 0.5);
    const gap = Math.max(1000, (MIXED_SECONDS * 1000 - 60_000) / kinds.length);
    const all = (async () => {
      for (const k of kinds) {
        await sleep(Math.floor(Math.random() * gap));
        await k();
      }
    })();
    await workloadUntil(p, all);
    await reconnect(p);
  });
}

/** N changes into the bench table: inserts of fresh ids, in transactions of 1,000 rows. */
let nextId = 1;
async function commitChanges(n: number, tick: number): Promise<void> {
  for (let done = 0; done < n; done += 1000) {
    const rows = Math.min(1000, n - done);
    await c.query(`INSERT INTO ${BENCH_TABLE} SELECT g, ${tick}, 'v' || g FROM generate_series(${nextId}, ${nextId + rows - 1}) g`);
    nextId += rows;
  }
}

/** Until the worker answers /readyz with 200: every sink's consumer is in its group and reading. */
async function workerReady(p: Pipeline): Promise<void> {
  const url = `http://127.0.0.1:${p.worker.env.HEALTH_PORT}/readyz`;
  await until('the worker to be ready', async () => ((await fetch(url).catch(() => undefined))?.status === 200 ? true : undefined), 120_000, 50);
}

async function slotConfirmed(lsn: string): Promise<void> {
  await until(
    'the slot to confirm the last commit',
    async () => {
      const { rows } = await c.query<{ ok: boolean }>(`SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'e2e'`, [
        lsn,
      ]);
      return rows[0]?.ok ? true : undefined;
    },
    600_000,
    50,
  );
}

async function helpersBulk(p: Pipeline, es: Client, roundNo: number): Promise<{ rate: number; cpu: Record<Role, number> }> {
  const index = `${BENCH_INDEX}-raw-${roundNo}`;
  const settings = await es.indices.getSettings({ index: BENCH_INDEX });
  const shards = Number(Object.values(settings)[0]?.settings?.index?.number_of_shards ?? 1);
  // The sink's own mapping (the index template's: keyword + text strings, typed metadata fields), so
  // Elasticsearch does the same work per document for both.
  const mappings = Object.values(await es.indices.getMapping({ index: BENCH_INDEX }))[0]?.mappings;
  await es.indices.create({ index, settings: { number_of_replicas: 0, number_of_shards: shards }, ...(mappings ? { mappings } : {}) });
  const docs = Array.from({ length: N }, (_, i) => ({
    id: i + 1,
    tick: roundNo,
    v: `v${i + 1}`,
    __op: 'c',
    __table: 'bench',
    __lsn: 1_000_000 + i,
    // The reader's commit time: milliseconds with the microseconds as a fraction.
    __source_ts_ms: Date.now() + (i % 1000) / 1000,
    __deleted: false,
    __version: 1_000_000 + i,
  }));
  const cpu0 = cpuSnapshot(p);
  const started = performance.now();
  const stats = await es.helpers.bulk({
    datasource: docs,
    concurrency: 4,
    onDocument: (d) => ({ index: { _index: index, _id: String(d.id), version: d.__version, version_type: 'external' } }),
    onDrop: (d) => {
      throw new Error(`helpers.bulk dropped a document: ${JSON.stringify(d.error)}`);
    },
  });
  const rate = (N / (performance.now() - started)) * 1000;
  const cpu = cpuPerChange(cpu0, cpuSnapshot(p), N);
  if (stats.successful !== N) throw new Error(`helpers.bulk wrote ${stats.successful} of ${N}`);
  await es.indices.delete({ index });
  return { rate, cpu };
}

async function throughputPhase(p: Pipeline, es: Client) {
  const reader: number[] = [];
  const e2e: number[] = [];
  const bulk: number[] = [];
  const drain: number[] = [];
  const cpu: Record<'readerOnly' | 'workerDrain' | 'e2e' | 'helpersBulk', Record<Role, number>[]> = {
    readerOnly: [],
    workerDrain: [],
    e2e: [],
    helpersBulk: [],
  };
  for (let r = 0; r < ROUNDS; r++) {
    // The reader alone: the worker stopped.
    await p.worker.stop();
    let cpu0 = cpuSnapshot(p);
    let t0 = performance.now();
    await commitChanges(N, r);
    const { rows } = await c.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn');
    await slotConfirmed(rows[0]!.lsn);
    reader.push((N / (performance.now() - t0)) * 1000);
    cpu.readerOnly.push(cpuPerChange(cpu0, cpuSnapshot(p), N));
    // The worker drains what the reader published meanwhile (informative), timed from when it is in
    // its group (process start and the group join are not drain).
    p.worker.start();
    await workerReady(p);
    cpu0 = cpuSnapshot(p);
    t0 = performance.now();
    await waitCaughtUp(p, 600_000, 100);
    drain.push((N / (performance.now() - t0)) * 1000);
    cpu.workerDrain.push(cpuPerChange(cpu0, cpuSnapshot(p), N));
    // End to end: both running.
    cpu0 = cpuSnapshot(p);
    t0 = performance.now();
    await commitChanges(N, r);
    await waitCaughtUp(p, 600_000, 100);
    e2e.push((N / (performance.now() - t0)) * 1000);
    cpu.e2e.push(cpuPerChange(cpu0, cpuSnapshot(p), N));
    const raw = await helpersBulk(p, es, r);
    bulk.push(raw.rate);
    cpu.helpersBulk.push(raw.cpu);
    log(
      `round ${r + 1}: reader ${Math.round(reader[r]!)}/s, e2e ${Math.round(e2e[r]!)}/s, helpers.bulk ${Math.round(bulk[r]!)}/s, worker drain ${Math.round(drain[r]!)}/s`,
    );
  }
  return { reader, e2e, bulk, drain, cpu };
}

async function latencyPhase(es: Client): Promise<number[]> {
  const perTick = (RATE * TICK_MS) / 1000;
  const ticks = (LATENCY_SECONDS * 1000) / TICK_MS;
  const firstTick = 1_000_000;
  const committed = new Map<number, number>();
  const latencies: number[] = [];
  let producing = true;
  let deadline = Infinity;
  const poll = (async () => {
    while (producing || (committed.size > 0 && Date.now() < deadline)) {
      await sleep(50);
      if (committed.size === 0) continue;
      const pending = [...committed.keys()];
      const found = await es.search({
        index: `${BENCH_INDEX}-live`,
        size: 0,
        query: { range: { tick: { gte: Math.min(...pending) } } },
        aggs: { t: { terms: { field: 'tick', size: 2000 } } },
      });
      const now = Date.now();
      for (const b of (found.aggregations?.t as { buckets: { key: number; doc_count: number }[] } | undefined)?.buckets ?? []) {
        const at = committed.get(Number(b.key));
        if (at !== undefined && b.doc_count >= perTick) {
          latencies.push(now - at);
          committed.delete(Number(b.key));
        }
      }
    }
  })();
  const start = Date.now();
  for (let k = 0; k < ticks; k++) {
    const due = start + k * TICK_MS;
    if (due > Date.now()) await sleep(due - Date.now());
    await commitChanges(perTick, firstTick + k);
    committed.set(firstTick + k, Date.now());
  }
  producing = false;
  deadline = Date.now() + 60_000;
  await poll;
  if (committed.size > 0) throw new Error(`${committed.size} transactions of the latency phase never became searchable within 60 s`);
  return latencies;
}

async function main(): Promise<void> {
  const startedAt = new Date().toISOString();
  const loadAtStart = loadavg().map((x) => Math.round(x * 100) / 100);
  const p = await startPipeline({
    workerEntry: WORKER_ENTRY,
    workerEnv: { ...WORKER_IMAGE_ENV, NODE_OPTIONS: WORKER_NODE_OPTIONS + WORKER_PROFILE_FLAGS },
    extraTables: [BENCH_TABLE],
    extraSql: `CREATE TABLE ${BENCH_TABLE} (id bigint PRIMARY KEY, tick int NOT NULL, v text)`,
    // Elasticsearch only: the throughput and latency phases run the Elasticsearch sink alone.
    extraRoutes: { [BENCH_TABLE]: { keys: ['id'], history: { enabled: false }, elasticsearch: { index: BENCH_INDEX } } },
  });
  const rss = setInterval(() => sampleRss(p), 500);
  const es = new Client({ node: p.services.env.ELASTICSEARCH_URL! });
  try {
    await reconnect(p);
    if (WITH_FAULTS) {
      log('faults, each on its own, then mixed');
      await faultsPhase(p);
    } else log('faults skipped (BENCH_E2E_FAULTS=off)');
    // From here the Elasticsearch sink alone (the bench table has no ADX route).
    const faultsPeakRssKb = peakRssKb;
    peakRssKb = 0;
    await p.worker.stop();
    p.worker = new Supervised(WORKER_ENTRY, { ...p.worker.env, WORKER_SINKS: 'elasticsearchSink' });
    p.worker.start();
    await waitCaughtUp(p, 300_000);
    log('throughput');
    const t = await throughputPhase(p, es);
    log('latency at 2,000 changes/s');
    const latencies = await latencyPhase(es);
    const readerOnlyPerSec = Math.round(median(t.reader));
    const changesPerSec = Math.round(median(t.e2e));
    const helpersBulkDocsPerSec = Math.round(median(t.bulk));
    const result = {
      measuredAt: startedAt,
      node: process.version,
      command: 'npm run bench:e2e',
      settings: {
        changesPerRound: N,
        rounds: ROUNDS,
        latencyRate: RATE,
        latencySeconds: LATENCY_SECONDS,
        mixedSeconds: MIXED_SECONDS,
        recoverySeconds: RECOVERY_SECONDS,
        partitions: 4,
      },
      changesPerSec,
      readerOnlyPerSec,
      helpersBulkDocsPerSec,
      e2eRatio: Math.round((changesPerSec / Math.min(readerOnlyPerSec, helpersBulkDocsPerSec)) * 100) / 100,
      workerDrainPerSec: Math.round(median(t.drain)),
      // Where each phase's CPU went, µs per change (median of the rounds): on 2 cores every part shares the same CPU.
      cpuMicrosPerChange: {
        readerOnly: medianPerRole(t.cpu.readerOnly),
        workerDrain: medianPerRole(t.cpu.workerDrain),
        e2e: medianPerRole(t.cpu.e2e),
        helpersBulk: medianPerRole(t.cpu.helpersBulk),
      },
      roundsPerSec: {
        e2e: t.e2e.map(Math.round),
        readerOnly: t.reader.map(Math.round),
        helpersBulk: t.bulk.map(Math.round),
        workerDrain: t.drain.map(Math.round),
      },
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      latencySamples: latencies.length,
      faults,
      lostTotal: Object.values(faults).reduce((a, f) => Math.max(a, f.lost), 0),
      workerPeakRssMb: Math.round(Math.max(faultsPeakRssKb, peakRssKb) / 1024),
      workerPeakRssMbByPhase: { faultsThreeSinks: Math.round(faultsPeakRssKb / 1024), elasticsearchSinkAlone: Math.round(peakRssKb / 1024) },
      workerNodeOptions: WORKER_NODE_OPTIONS,
      workerImageEnv: WORKER_IMAGE_ENV,
      loadAverage: { atStart: loadAtStart, atEnd: loadavg().map((x) => Math.round(x * 100) / 100) },
      notes: [
        'faults: the full worker (Elasticsearch sink, change history, ADX sink against the Kusto stand-in); lost and differences are over the whole run so far',
        'changesPerSec, p50Ms/p99Ms: the worker with the Elasticsearch sink alone (WORKER_SINKS=elasticsearchSink), table e2e.bench routed to Elasticsearch only',
        "workerPeakRssMb: highest VmHWM of the worker processes (dist/src/worker/main.js with the worker image CMD's Node flags, workerNodeOptions), both workers, faults included",
        'one machine (2 cores) shared by PostgreSQL, Kafka, Elasticsearch, Azurite, the reader, the worker and this process',
      ],
    };
    mkdirSync('bench/results', { recursive: true });
    const file = WITH_FAULTS ? RESULTS : RESULTS_NO_FAULTS;
    writeFileSync(file, JSON.stringify(WITH_FAULTS ? result : { ...result, faults: 'skipped (BENCH_E2E_FAULTS=off)' }, null, 2) + '\n');
    log(`wrote ${file}: ${JSON.stringify({ ...result, faults: undefined, notes: undefined })}`);
  } finally {
    clearInterval(rss);
    await es.close();
    await c?.end().catch(() => undefined);
    await stopPipeline(p);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench:e2e failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
