// Reader benchmark (not a test). Writes bench/results/reader.json.
//   npm run bench:reader          (uses .services.env: the test services must be up)
// Phases, each on the same PostgreSQL and Kafka, the reader running as its own process (the real
// entry point) so its peak RSS (VmHWM) is its own:
//  1. changesPerSec: N single-row transactions are committed while the reader is down (pgbench),
//     then the reader drains them; time from its start of streaming to PostgreSQL's confirmed_flush
//     passing the last commit (the reader confirms only what Kafka acknowledged).
//  2. limitPerSec: the same WAL (a second slot created at the same point) decoded by
//     `pg_recvlogical -f -` into /dev/null, timed the same way.
//  3. bulkRowsPerSec: one 1M-row INSERT transaction; time from its commit to its acknowledgement.
//  4. p50Ms/p99Ms: commit-to-ack latency (reader's own histogram, commit timestamp from the WAL)
//     at a fixed 5,000 single-row transactions/s (pgbench -R 5000).
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = fileURLToPath(new URL('../', import.meta.url));
const envFile = Object.fromEntries(
  readFileSync(new URL('../.services.env', import.meta.url), 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const N = Number(process.env.BENCH_TX ?? 200_000);
const BULK = Number(process.env.BENCH_BULK ?? 1_000_000);
const RATE = Number(process.env.BENCH_RATE ?? 5_000);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 15);
const tag = `bench_${Date.now().toString(36)}`;
const slot = tag;
const limitSlot = `${tag}_limit`;
const pgEnv = { PGHOST: envFile.PGHOST, PGPORT: envFile.PGPORT, PGUSER: envFile.PGUSER, PGDATABASE: envFile.PGDATABASE };
const log = (msg, extra = {}) => process.stdout.write(JSON.stringify({ time: new Date().toISOString(), msg, ...extra }) + '\n');

const c = new pg.Client({ host: pgEnv.PGHOST, port: Number(pgEnv.PGPORT), user: pgEnv.PGUSER, database: pgEnv.PGDATABASE });
await c.connect();
const q = (sql, p) => c.query(sql, p);
const lsnNum = (t) => {
  const [h, l] = t.split('/');
  return (BigInt(`0x${h}`) << 32n) | BigInt(`0x${l}`);
};
const currentLsn = async () => lsnNum((await q('SELECT pg_current_wal_lsn()::text AS l')).rows[0].l);
const confirmed = async (s) => {
  const r = await q('SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1', [s]);
  return r.rows[0]?.l ? lsnNum(r.rows[0].l) : 0n;
};
/** The current WAL position, then an empty transaction after it the reader will confirm. */
async function markEnd() {
  const l = await currentLsn();
  await q(`SELECT pg_logical_emit_message(true, 'bench-mark', 'x')`);
  return l;
}
async function waitConfirmed(s, target, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await confirmed(s)) >= target) return performance.now();
    if (Date.now() > deadline) throw new Error(`slot ${s} did not reach ${target}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
function startReader(healthPort) {
  const env = {
    PATH: process.env.PATH,
    ...pgEnv,
    KAFKA_BROKERS: envFile.KAFKA_BROKERS,
    AZURE_STORAGE_CONNECTION_STRING: envFile.AZURE_STORAGE_CONNECTION_STRING,
    CDC_SLOT: slot,
    CDC_PUBLICATION: `${tag}_pub`,
    CDC_TABLES: `${tag}.t`,
    CDC_TOPIC: `${tag}_events`,
    CDC_STATE_SCHEMA: `${tag}_state`,
    CDC_SNAPSHOT_MODE: 'never',
    HEALTH_PORT: String(healthPort),
    LOG_LEVEL: 'warn',
    DEADLETTER_CONTAINER: tag.replace(/_/g, '-'),
  };
  // The compiled entry point, as in the container (`npm run bench:reader` builds first).
  // BENCH_CPU_PROF=<dir>: write a V8 CPU profile of each reader process there (profiling, not for figures).
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const proc = spawn(process.execPath, [...prof, '--max-old-space-size=128', '--max-semi-space-size=8', 'dist/src/reader/main.js'], {
    cwd: root,
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise((r) => proc.on('exit', r));
  return { proc, exited, port: healthPort };
}
async function waitReady(r) {
  for (;;) {
    try {
      const res = await fetch(`http://127.0.0.1:${r.port}/readyz`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((res) => setTimeout(res, 50));
  }
}
function peakRssMb(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)[1]) / 1024;
}
async function stopReader(r) {
  const rss = peakRssMb(r.proc.pid);
  const metrics = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).json();
  r.proc.kill('SIGTERM');
  await r.exited;
  return { rss, metrics };
}
function pgbench(args, script) {
  writeFileSync(`/tmp/${tag}.sql`, script);
  // synchronous_commit=on for the load (the test server defaults to off, which delays the WAL
  // flush, and so logical decoding, by up to wal_writer_delay = 200 ms).
  return execFileSync('pgbench', ['-n', '-h', pgEnv.PGHOST, '-p', pgEnv.PGPORT, '-U', pgEnv.PGUSER, '-f', `/tmp/${tag}.sql`, ...args, pgEnv.PGDATABASE], {
    encoding: 'utf8',
    env: { ...process.env, PGOPTIONS: '-c synchronous_commit=on' },
  });
}

const result = {
  measuredAt: new Date().toISOString(),
  machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
  transactions: N,
  bulkRows: BULK,
  rateTarget: RATE,
};
let peakRss = 0;
try {
  await q(`CREATE SCHEMA ${tag}; CREATE TABLE ${tag}.t (id bigserial PRIMARY KEY, v int NOT NULL, note text)`);
  // Slot, publication: created by a first short reader run; then a twin slot for pg_recvlogical.
  let r = startReader(18000 + Math.floor(Math.random() * 1000));
  await waitReady(r);
  ({ rss: r.rssSeen } = await stopReader(r));
  await q(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [limitSlot]);
  // Both slots now start at (about) the same point; move the twin to the reader slot's position.
  const start = await confirmed(slot);
  log('generating single-row transactions while the reader is down', { n: N });
  pgbench(['-c', '4', '-j', '2', '-t', String(N / 4)], `INSERT INTO ${tag}.t (v, note) VALUES (1, 'single-row transaction');\n`);
  const end = await markEnd();
  const endPos = await currentLsn();

  // 2. the physical ceiling: pg_recvlogical on the twin slot
  const t0 = performance.now();
  execFileSync(
    'sh',
    [
      '-c',
      'exec "$@" > /dev/null',
      'pg_recvlogical',
      'pg_recvlogical',
      '-h',
      pgEnv.PGHOST,
      '-p',
      pgEnv.PGPORT,
      '-U',
      pgEnv.PGUSER,
      '-d',
      pgEnv.PGDATABASE,
      '--slot',
      limitSlot,
      '--start',
      '--no-loop',
      '-o',
      'proto_version=1',
      '-o',
      `publication_names=${tag}_pub`,
      '--endpos',
      endPosText(endPos),
      '-f',
      '-',
    ],
    { stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const limitSecs = (performance.now() - t0) / 1000;
  result.limitPerSec = Math.round(N / limitSecs);
  log('pg_recvlogical', { seconds: limitSecs, perSec: result.limitPerSec });

  // 1. the reader draining the same WAL
  r = startReader(18000 + Math.floor(Math.random() * 1000));
  await waitReady(r);
  const r0 = performance.now();
  const r1 = await waitConfirmed(slot, end + 1n);
  const readerSecs = (r1 - r0) / 1000;
  result.changesPerSec = Math.round(N / readerSecs);
  result.ratio = +(result.changesPerSec / result.limitPerSec).toFixed(3);
  log('reader', { seconds: readerSecs, perSec: result.changesPerSec, ratio: result.ratio, startLsn: start.toString() });

  // 3. one 1M-row transaction while the reader streams
  await q(`INSERT INTO ${tag}.t (v, note) SELECT g, 'bulk row ' || g FROM generate_series(1, ${BULK}) g`);
  const bulkCommitted = performance.now();
  const bulkEnd = await markEnd();
  const b1 = await waitConfirmed(slot, bulkEnd + 1n);
  result.bulkRowsPerSec = Math.round(BULK / ((b1 - bulkCommitted) / 1000));
  log('bulk', { seconds: (b1 - bulkCommitted) / 1000, rowsPerSec: result.bulkRowsPerSec });
  let stopped = await stopReader(r);
  peakRss = Math.max(peakRss, stopped.rss);
  result.readerPeakInflightBytes = stopped.metrics.inflightBytes;

  // 4. latency at a fixed rate, with a fresh reader (fresh histogram)
  r = startReader(18000 + Math.floor(Math.random() * 1000));
  await waitReady(r);
  pgbench(['-c', '4', '-j', '2', '-R', String(RATE), '-T', '3'], `INSERT INTO ${tag}.t (v, note) VALUES (2, 'warm-up');\n`);
  await waitConfirmed(slot, (await markEnd()) + 1n);
  await fetch(`http://127.0.0.1:${r.port}/metrics/reset`, { method: 'POST' });
  log('fixed-rate load', { rate: RATE, seconds: RATE_SECONDS });
  const out = pgbench(['-c', '4', '-j', '2', '-R', String(RATE), '-T', String(RATE_SECONDS)], `INSERT INTO ${tag}.t (v, note) VALUES (2, 'paced');\n`);
  const achieved = /tps = ([\d.]+)/.exec(out);
  await waitConfirmed(slot, (await markEnd()) + 1n);
  stopped = await stopReader(r);
  peakRss = Math.max(peakRss, stopped.rss);
  result.rateAchieved = achieved ? Math.round(Number(achieved[1])) : null;
  result.p50Ms = +stopped.metrics.commitToAckMs.p50.toFixed(2);
  result.p99Ms = +stopped.metrics.commitToAckMs.p99.toFixed(2);
  result.latencySamples = stopped.metrics.commitToAckMs.count;
  result.peakRssMb = Math.round(peakRss);
  result.targets = { ratio: 0.9, p99Ms: 50, peakRssMb: 200 };
  result.command = 'npm run bench:reader';
} finally {
  await q('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ANY($1) AND NOT active', [[slot, limitSlot]]).catch(
    () => undefined,
  );
  await q(`DROP PUBLICATION IF EXISTS ${tag}_pub; DROP SCHEMA IF EXISTS ${tag} CASCADE; DROP SCHEMA IF EXISTS ${tag}_state CASCADE`).catch(() => undefined);
  await c.end();
}
function endPosText(l) {
  return `${(l >> 32n).toString(16).toUpperCase()}/${(l & 0xffffffffn).toString(16).toUpperCase()}`;
}
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/reader.json', import.meta.url), JSON.stringify(result, null, 2) + '\n');
log('result', result);
