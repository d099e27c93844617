// Initial-snapshot benchmark (not a test). Writes bench/results/snapshot.json.
//   npm run bench:snapshot        (uses the test services: .services.env here or in $PG_CDC_SERVICES_STATE_DIR)
// Two tables, each loaded once with generate_series INSERTs:
//   orders: BENCH_SNAPSHOT_ROWS rows (default 2,000,000), orders-shaped, about 100 B per row as JSON;
//   wide:   a quarter of that (default 500,000), 20 columns of mixed types with jsonb and text, about 735 B per row.
// For each table, in the same run (so load from other work on the machine hits both alike):
//   - the ceiling: server-side `COPY (SELECT row_to_json(t) FROM <table> t) TO '/dev/null'`, and
//     `\copy <table> TO /dev/null` (psql, the raw rows over the wire);
//   - the reader (the compiled entry point, its own process) in CDC_SNAPSHOT_MODE=initial_only on a fresh
//     slot: it snapshots the table into a fresh Kafka topic and exits. Timed from its "snapshot started" to
//     its "snapshot finished" log line; once on all cores and once pinned to one core (`taskset -c 0`).
//     CPU seconds and peak RSS of the reader from /usr/bin/time, and its CPU µs per row over the snapshot phase alone; CPU seconds of PostgreSQL (the reader's own
//     backends, found by their client ports, sampled from /proc) and of the broker's process (shared with other work).
// BENCH_SNAPSHOT_ROUNDS (default 1) repeats the reader runs; figures are then medians with min and max.
// BENCH_SNAPSHOT_TABLES=wide (or orders): run one table only, for probes.
// BENCH_CPU_PROF=<dir>: a V8 CPU profile of each reader process (profiling, not for figures); BENCH_NODE_FLAGS: more node flags.
// Extra reader settings pass through: CDC_SNAPSHOT_PARALLELISM, CDC_SNAPSHOT_READER_THREADS, CDC_SNAPSHOT_CHUNK_ROWS, CDC_MAX_INFLIGHT_BYTES, and glibc's MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_.
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, existsSync, rmSync, readdirSync, statSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Admin } from '@platformatic/kafka';
import { brokerPid, compareEnv, compareHeapFlags, cpuOf, READER_HEAP_FLAGS } from './proc.mjs';

const root = fileURLToPath(new URL('../', import.meta.url));
const stateDir = [root, process.env.PG_CDC_SERVICES_STATE_DIR].filter(Boolean).find((d) => existsSync(`${d}/.services.env`));
if (!stateDir) throw new Error('no .services.env: start the test services (npm run services:up) or set PG_CDC_SERVICES_STATE_DIR');
const envFile = Object.fromEntries(
  readFileSync(`${stateDir}/.services.env`, 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const ORDERS = Number(process.env.BENCH_SNAPSHOT_ROWS ?? 2_000_000);
const WIDE = Math.max(1, Math.round(ORDERS / 4));
const ROUNDS = Number(process.env.BENCH_SNAPSHOT_ROUNDS ?? 1);
// BENCH_SNAPSHOT_TABLES: a comma list of the tables to run (default both), for probes of one table.
const TABLES = (process.env.BENCH_SNAPSHOT_TABLES ?? 'orders,wide')
  .split(',')
  .map((t) => t.trim())
  .filter(Boolean);
for (const t of TABLES) if (t !== 'orders' && t !== 'wide') throw new Error(`BENCH_SNAPSHOT_TABLES: unknown table ${t} (orders, wide)`);
// BENCH_COMPARE_DIST=<another build's dist folder>: in each round, also that build's reader (all cores), for a paired A/B;
// BENCH_COMPARE_NODE_FLAGS: its heap flags instead of the container's (bench/proc.mjs), to compare flags on one build;
// BENCH_COMPARE_ENV="CDC_SNAPSHOT_READER_THREADS=1 ...": its settings over the run's, to compare settings on one build.
const COMPARE = process.env.BENCH_COMPARE_DIST ?? null;
const tag = `bsnap_${Date.now().toString(36)}`;
const pgEnv = { PGHOST: envFile.PGHOST, PGPORT: envFile.PGPORT, PGUSER: envFile.PGUSER, PGDATABASE: envFile.PGDATABASE };
const log = (msg, extra = {}) => process.stdout.write(JSON.stringify({ time: new Date().toISOString(), msg, ...extra }) + '\n');
const load = () => loadavg().map((x) => +x.toFixed(2));

const c = new pg.Client({ host: pgEnv.PGHOST, port: Number(pgEnv.PGPORT), user: pgEnv.PGUSER, database: pgEnv.PGDATABASE });
await c.connect();
const q = (sql, p) => c.query(sql, p);

async function createTables() {
  await q(`CREATE SCHEMA ${tag}`);
  await q(
    `CREATE TABLE ${tag}.orders (id bigint PRIMARY KEY, customer_id int NOT NULL, status text NOT NULL, amount numeric(10,2) NOT NULL, created_at timestamptz NOT NULL)`,
  );
  await q(`CREATE TABLE ${tag}.wide (
    id bigint PRIMARY KEY, i int, s smallint, n numeric(14,4), f float8, r real, b boolean, t text, v varchar(64),
    ts timestamptz, d date, tm time, u uuid, j jsonb, a int[], ip inet, iv interval, by bytea, c char(8), note text)`);
  const step = 250_000;
  for (let lo = 1; lo <= ORDERS; lo += step) {
    const hi = Math.min(ORDERS, lo + step - 1);
    await q(`INSERT INTO ${tag}.orders SELECT g, (g::bigint * 7919) % 100000, (ARRAY['new','paid','shipped','delivered','returned'])[1 + g % 5],
               ((g * 31) % 100000) / 100.0, timestamptz '2026-01-01' + g * interval '1 second' FROM generate_series(${lo}, ${hi}) g`);
  }
  for (let lo = 1; lo <= WIDE; lo += step) {
    const hi = Math.min(WIDE, lo + step - 1);
    await q(`INSERT INTO ${tag}.wide SELECT g, g * 3, (g % 30000)::smallint, (g * 1.2345)::numeric(14,4), g / 7.0, (g % 1000) / 3.0, g % 2 = 0,
               repeat(md5(g::text), 3), 'v-' || g, timestamptz '2026-01-01' + g * interval '1 minute', date '2020-01-01' + (g % 3000),
               time '00:00' + (g % 86400) * interval '1 second', md5(g::text)::uuid,
               jsonb_build_object('id', g, 'name', 'item ' || g, 'tags', jsonb_build_array('a', 'b', g % 10), 'price', g % 1000 / 10.0, 'nested', jsonb_build_object('x', g, 'y', md5(g::text))),
               ARRAY[g, g + 1, g + 2], ('10.' || (g % 250) || '.' || (g % 200) || '.1')::inet, (g % 1000) * interval '1 minute',
               decode(md5(g::text), 'hex'), 'c' || (g % 1000), 'note ' || repeat('x', 60 + g % 40)
             FROM generate_series(${lo}, ${hi}) g`);
  }
  await q(`VACUUM ANALYZE ${tag}.orders`);
  await q(`VACUUM ANALYZE ${tag}.wide`);
}

async function ceiling(table) {
  const bytes = Number((await q(`SELECT sum(octet_length(row_to_json(x_row)::text))::bigint::text AS b FROM ${tag}.${table} x_row`)).rows[0].b);
  const t0 = performance.now();
  await q(`COPY (SELECT row_to_json(x_row) FROM ${tag}.${table} x_row) TO '/dev/null'`);
  const serverSecs = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  execFileSync('psql', ['-h', pgEnv.PGHOST, '-p', pgEnv.PGPORT, '-U', pgEnv.PGUSER, '-d', pgEnv.PGDATABASE, '-qc', `\\copy ${tag}.${table} TO '/dev/null'`]);
  const copySecs = (performance.now() - t1) / 1000;
  return { jsonBytes: bytes, rowToJsonSecs: serverSecs, copySecs };
}

async function runReader(table, rows, pinned, round, main = 'dist/src/reader/main.js') {
  // Another build's reader (BENCH_COMPARE_DIST): its own heap flags and settings where given.
  const compared = main !== 'dist/src/reader/main.js';
  const run = `${tag}_${table}_${pinned ? 'p' : 'a'}${compared ? 'c' : ''}${round}`;
  const timeFile = `/tmp/${run}.time`;
  const env = {
    PATH: process.env.PATH,
    ...pgEnv,
    KAFKA_BROKERS: envFile.KAFKA_BROKERS,
    AZURE_STORAGE_CONNECTION_STRING: envFile.AZURE_STORAGE_CONNECTION_STRING,
    CDC_SLOT: run,
    CDC_PUBLICATION: `${run}_pub`,
    CDC_TABLES: `${tag}.${table}`,
    CDC_TOPIC: `${run}_events`,
    CDC_STATE_SCHEMA: `${tag}_state`,
    CDC_SNAPSHOT_MODE: 'initial_only',
    HEALTH_PORT: String(18000 + Math.floor(Math.random() * 1000)),
    LOG_LEVEL: 'info',
    DEADLETTER_CONTAINER: run.replace(/_/g, '-'),
  };
  for (const k of [
    'CDC_SNAPSHOT_PARALLELISM',
    'CDC_SNAPSHOT_READER_THREADS',
    'CDC_SNAPSHOT_CHUNK_ROWS',
    'CDC_MAX_INFLIGHT_BYTES',
    'MALLOC_ARENA_MAX',
    'MALLOC_MMAP_THRESHOLD_',
    'MALLOC_TRIM_THRESHOLD_',
  ])
    if (process.env[k]) env[k] = process.env[k];
  if (compared) Object.assign(env, compareEnv());
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  // BENCH_NODE_FLAGS: more node flags for the reader (e.g. --trace-gc); its lines that are not JSON go to /tmp/<run>.out.
  const flags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const heap = compared ? compareHeapFlags() : READER_HEAP_FLAGS;
  const node = [process.execPath, ...prof, ...flags, ...heap, main];
  const otherLines = [];
  const argv = ['-f', '%e %U %S %M', '-o', timeFile, ...(pinned ? ['taskset', '-c', '0'] : []), ...node];
  const loadBefore = load();
  const proc = spawn('/usr/bin/time', argv, { cwd: root, env, stdio: ['ignore', 'pipe', 'inherit'] });
  // The reader's own process (time's child; taskset execs it): its CPU over the snapshot phase alone.
  const readerPid = () => Number(readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim().split(' ')[0]);
  let cpuAtStart = null;
  let cpuAtEnd = null;
  let started = null;
  let finished = null;
  let tail = '';
  proc.stdout.on('data', (d) => {
    tail += d.toString();
    let nl;
    while ((nl = tail.indexOf('\n')) >= 0) {
      const line = tail.slice(0, nl);
      tail = tail.slice(nl + 1);
      let j;
      try {
        j = JSON.parse(line);
      } catch {
        if (flags.length > 0) otherLines.push(line);
        continue;
      }
      if (j.msg === 'snapshot started') {
        started = Date.parse(j.time ?? j.timestamp) || Date.now();
        cpuAtStart = cpuOf(readerPid());
      }
      if (j.msg === 'snapshot finished') {
        finished = Date.parse(j.time ?? j.timestamp) || Date.now();
        cpuAtEnd = cpuOf(readerPid());
      }
      if (j.level === 'error' || j.level === 50) log('reader error', j);
    }
  });
  // PostgreSQL CPU of the reader's own backends (sampled; the last 100 ms of a backend may be missed).
  const pgCpu = new Map();
  const broker = brokerPid(envFile.KAFKA_BROKERS);
  const brokerBefore = broker ? cpuOf(broker) : null;
  const poll = setInterval(async () => {
    try {
      // The reader's own backends: those whose client port is one of the reader process's sockets.
      const child = readerPid();
      if (!child) return;
      const ss = execFileSync('ss', ['-tnpH', `dport = :${pgEnv.PGPORT}`], { encoding: 'utf8' });
      const ports = ss
        .split('\n')
        .filter((l) => l.includes(`pid=${child},`))
        .map((l) => Number(/:(\d+)\s+\S+:\d+\s/.exec(l)?.[1]))
        .filter(Boolean);
      if (ports.length === 0) return;
      const r = await q(`SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1)`, [ports]);
      for (const { pid } of r.rows) {
        const s = cpuOf(pid);
        if (s !== null) pgCpu.set(pid, s);
      }
    } catch {
      // the benchmark's connection is busy or closing
    }
  }, 200);
  const code = await new Promise((r) => proc.on('exit', r));
  clearInterval(poll);
  if (otherLines.length > 0) writeFileSync(`/tmp/${run}.out`, otherLines.join('\n') + '\n');
  const brokerAfter = broker ? cpuOf(broker) : null;
  if (code !== 0) throw new Error(`reader run ${run} exited with ${code}`);
  const [wall, user, sys, maxRssKb] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  rmSync(timeFile, { force: true });
  const secs = (finished - started) / 1000;
  await q(`DROP PUBLICATION IF EXISTS ${run}_pub`).catch(() => undefined);
  const topicBytes = logBytesOf(`${run}_events`);
  topicsToDelete.push(`${run}_events`);
  const out = {
    pinned,
    // Bytes per row as the broker stores them (its log segments: record values and keys, batch headers).
    recordBytesPerRow: topicBytes === null ? null : Math.round(topicBytes / rows),
    seconds: +secs.toFixed(2),
    rowsPerSec: Math.round(rows / secs),
    wallSecondsIncludingStartup: wall,
    readerCpuSecs: +(user + sys).toFixed(2),
    // Of it, the kernel's share: on loopback the sender's writes also run the receiving side of TCP.
    readerSysSecs: sys,
    // CPU of the reader between its "snapshot started" and "snapshot finished" lines, per row (start-up excluded).
    readerCpuUsPerRow: cpuAtStart !== null && cpuAtEnd !== null ? +(((cpuAtEnd - cpuAtStart) * 1e6) / rows).toFixed(2) : null,
    pgCpuSecs: +[...pgCpu.values()].reduce((a, b) => a + b, 0).toFixed(2),
    brokerCpuSecs: brokerBefore !== null && brokerAfter !== null ? +(brokerAfter - brokerBefore).toFixed(2) : null,
    peakRssMb: Math.round(maxRssKb / 1024),
    loadBefore,
    loadAfter: load(),
  };
  log('reader run', { table, main, ...out });
  return out;
}

/**
 * The broker's data directory, when it is the test services' own local broker (their state file names
 * its work directory); null otherwise. Used for the stored bytes per row and to free the disk.
 */
function kafkaDataDir() {
  try {
    const state = JSON.parse(readFileSync(`${stateDir}/.services.state.json`, 'utf8'));
    const dir = `${state.workDir}/kafka/data`;
    return existsSync(dir) ? dir : null;
  } catch {
    return null;
  }
}
/** Bytes of a topic's log segments (all its partitions), or null when the broker is not local. */
function logBytesOf(topic) {
  const dir = kafkaDataDir();
  if (dir === null) return null;
  let bytes = 0;
  for (const part of readdirSync(dir).filter((d) => d.startsWith(`${topic}-`) && /-\d+$/.test(d))) {
    for (const f of readdirSync(`${dir}/${part}`)) if (f.endsWith('.log')) bytes += statSync(`${dir}/${part}/${f}`).size;
  }
  return bytes;
}
/** Deletes the benchmark's topics, in one request (a 2M-row snapshot is about 1 GB on the broker's disk). */
async function deleteTopics(topics) {
  if (topics.length === 0) return;
  const admin = new Admin({ clientId: 'bench-snapshot', bootstrapBrokers: [envFile.KAFKA_BROKERS] });
  try {
    await admin.deleteTopics({ topics });
  } catch (err) {
    log('topics not deleted', { topics, error: String(err?.message ?? err) });
  } finally {
    await admin.close();
  }
}
/** The benchmark's topics, deleted at the end. */
const topicsToDelete = [];

/**
 * The floor under the reader's CPU for this table (bench/snapshotFloor.mjs): the same rows read through
 * `pg` and published through the reader's KafkaPublisher as opaque values of `valueBytes`, without any
 * encoding. The same node flags as the reader.
 */
function floorOf(table, valueBytes) {
  const topic = `${tag}_${table}_floor`;
  topicsToDelete.push(topic);
  const out = execFileSync(process.execPath, [...READER_HEAP_FLAGS, 'bench/snapshotFloor.mjs'], {
    cwd: root,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH,
      ...pgEnv,
      KAFKA_BROKERS: envFile.KAFKA_BROKERS,
      FLOOR_TABLE: `${tag}.${table}`,
      FLOOR_KEY: 'id',
      FLOOR_TOPIC: topic,
      ...(valueBytes ? { FLOOR_VALUE_BYTES: String(valueBytes) } : {}),
    },
  });
  return JSON.parse(out.trim().split('\n').pop());
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
function summarise(runs, key) {
  const xs = runs.map((r) => r[key]);
  return { median: +median(xs).toFixed(2), min: Math.min(...xs), max: Math.max(...xs) };
}

const result = {
  measuredAt: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version, loadAtStart: load() },
  settings: {
    CDC_SNAPSHOT_PARALLELISM: process.env.CDC_SNAPSHOT_PARALLELISM ?? '(default)',
    CDC_SNAPSHOT_READER_THREADS: process.env.CDC_SNAPSHOT_READER_THREADS ?? '(default)',
    malloc: Object.fromEntries(
      ['MALLOC_ARENA_MAX', 'MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_'].flatMap((k) => (process.env[k] ? [[k, process.env[k]]] : [])),
    ),
    CDC_SNAPSHOT_CHUNK_ROWS: process.env.CDC_SNAPSHOT_CHUNK_ROWS ?? '(default)',
    CDC_MAX_INFLIGHT_BYTES: process.env.CDC_MAX_INFLIGHT_BYTES ?? '(default)',
    rounds: ROUNDS,
    tables: TABLES,
    compareDist: COMPARE,
    heapFlags: READER_HEAP_FLAGS,
    compareHeapFlags: COMPARE ? compareHeapFlags() : null,
    compareEnv: COMPARE ? compareEnv() : null,
  },
  tables: {},
};
try {
  log('loading tables', { orders: ORDERS, wide: WIDE });
  await createTables();
  for (const [table, rows] of [
    ['orders', ORDERS],
    ['wide', WIDE],
  ].filter(([name]) => TABLES.includes(name))) {
    const ceil = await ceiling(table);
    const bytesPerRow = ceil.jsonBytes / rows;
    const t = {
      rows,
      jsonBytesPerRow: Math.round(bytesPerRow),
      ceiling: {
        rowToJsonRowsPerSec: Math.round(rows / ceil.rowToJsonSecs),
        copyRowsPerSec: Math.round(rows / ceil.copySecs),
        load: load(),
      },
    };
    log('ceiling', { table, ...t.ceiling });
    const all = [];
    const pinned = [];
    const compare = [];
    for (let i = 0; i < ROUNDS; i++) {
      all.push(await runReader(table, rows, false, i));
      pinned.push(await runReader(table, rows, true, i));
      if (COMPARE) compare.push(await runReader(table, rows, false, i, `${COMPARE}/src/reader/main.js`));
    }
    for (const [name, runs] of [['allCores', all], ['oneCore', pinned], ...(COMPARE ? [['compareAllCores', compare]] : [])]) {
      const rps = summarise(runs, 'rowsPerSec');
      t[name] = {
        rowsPerSec: rps,
        mbPerSec: +((rps.median * bytesPerRow) / 1e6).toFixed(1),
        ratioToRowToJson: +(rps.median / t.ceiling.rowToJsonRowsPerSec).toFixed(3),
        ratioToCopy: +(rps.median / t.ceiling.copyRowsPerSec).toFixed(3),
        peakRssMb: summarise(runs, 'peakRssMb'),
        readerCpuSecs: summarise(runs, 'readerCpuSecs'),
        readerCpuUsPerRow: runs.some((r) => r.readerCpuUsPerRow === null) ? null : summarise(runs, 'readerCpuUsPerRow'),
        pgCpuSecs: summarise(runs, 'pgCpuSecs'),
        brokerCpuSecs: runs.some((r) => r.brokerCpuSecs === null) ? null : summarise(runs, 'brokerCpuSecs'),
        runs,
      };
    }
    // What bounds the rate on this machine: every row costs CPU in the reader, PostgreSQL and the broker,
    // and they share the cores. `atReaderCpu`: the rate at which the three together use every core;
    // `atFloor`: the same with the reader at its floor (bench/snapshotFloor.mjs).
    const recordBytes = all[0]?.recordBytesPerRow ?? null;
    // Values 40 bytes short of the stored bytes per row: the key and the record and batch headers.
    const floor = floorOf(table, recordBytes === null ? null : Math.max(0, recordBytes - 40));
    log('floor', { table, ...floor });
    const perRow = (secs) => (secs.median * 1e6) / rows;
    const reader = t.allCores.readerCpuUsPerRow?.median ?? null;
    const others = perRow(t.allCores.pgCpuSecs) + (t.allCores.brokerCpuSecs === null ? 0 : perRow(t.allCores.brokerCpuSecs));
    const cores = cpus().length;
    t.recordBytesPerRow = recordBytes;
    t.floor = floor;
    t.bound = {
      cores,
      pgAndBrokerCpuUsPerRow: +others.toFixed(2),
      atReaderCpuRowsPerSec: reader === null ? null : Math.round((cores * 1e6) / (reader + others)),
      // The floor of a reader that reads with COPY, as this one does since run 13 (before: rows through `pg`).
      atFloorRowsPerSec: Math.round((cores * 1e6) / ((floor.copyReadAndProduce ?? floor.readAndProduce) + others)),
    };
    log('bound', { table, ...t.bound });
    result.tables[table] = t;
  }
  result.targets = { ordersRowsPerSec: 150_000, wideRowsPerSec: 60_000, peakRssMb: 200 };
  result.command = 'npm run bench:snapshot';
} finally {
  await deleteTopics(topicsToDelete);
  await q(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE $1 AND NOT active`, [`${tag}%`]).catch(() => undefined);
  await q(`DROP SCHEMA IF EXISTS ${tag} CASCADE; DROP SCHEMA IF EXISTS ${tag}_state CASCADE`).catch(() => undefined);
  await c.end();
}
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL(process.env.BENCH_SNAPSHOT_OUT ?? './results/snapshot.json', import.meta.url), JSON.stringify(result, null, 2) + '\n');
log('result', result);
