// Reader benchmark (not a test). Writes bench/results/reader.json.
//   npm run bench:reader          (uses the test services: .services.env here or in $PG_CDC_SERVICES_STATE_DIR)
// BENCH_ROUNDS paired rounds (default 5); every figure is reported as the median with min and max over
// them, and each round's own figures are kept. A round, on the same PostgreSQL and Kafka, the reader
// running as its own process (the compiled entry point, the container's heap flags) so its peak RSS
// (VmHWM) and CPU time are its own:
//  1. limitPerSec: BENCH_TX single-row transactions (pgbench) are committed while the reader is down,
//     then `pg_recvlogical -f -` decodes them into /dev/null from a twin slot created at the same point,
//     timed to its --endpos: the ceiling, measured in the same round as the reader.
//  2. changesPerSec: the reader drains the same WAL; time from its readiness to PostgreSQL's
//     confirmed_flush passing the last commit (the reader confirms only what Kafka acknowledged).
//     ratio = changesPerSec / limitPerSec of the same round.
//  3. bulkRowsPerSec: one BENCH_BULK-row INSERT transaction while the reader streams; time from its
//     commit to its acknowledgement.
//  4. p50Ms/p99Ms: commit-to-ack latency (the reader's own histogram, commit timestamp from the WAL)
//     at a fixed BENCH_RATE single-row transactions/s (pgbench -R) for BENCH_RATE_SECONDS, after a
//     short warm-up whose samples are reset.
//  Also per round: the reader's peak RSS, and its CPU µs per change in phases 2 and 3 (utime+stime from
//  /proc, steadier than rates on a shared machine), and the load average. In phases 1 and 2 the CPU µs
//  per change of the slot's walsender, of pg_recvlogical and of the broker too, and `boundPerSec`: the
//  drain rate at which the reader, its walsender and the broker together use every core (what a
//  shared machine allows at the measured costs), and `backlogBytes`: the WAL the slot's walsender decodes
//  before the round's first change (its restart_lsn to its confirmed position; see advance()).
// BENCH_READER_OUT=<file>: write the result there instead of bench/results/reader.json (probe runs).
// BENCH_COMPARE_DIST=<another build's dist folder>: in each round, also that build's reader on its own
// slot over the same WAL (phase 2), then its own bulk and fixed-rate phases: a paired A/B;
// BENCH_COMPARE_NODE_FLAGS: its heap flags instead of the container's (bench/proc.mjs), to compare flags on one build.
// BENCH_CPU_PROF=<dir>: a V8 CPU profile of each reader process there; BENCH_NODE_FLAGS: more node flags for
// the reader (both for profiling, not for figures).
import { spawn, execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cpus } from 'node:os';
import pg from 'pg';
import { brokerPid, compareHeapFlags, cpuOf, peakRssMb, READER_HEAP_FLAGS } from './proc.mjs';

const root = fileURLToPath(new URL('../', import.meta.url));
const stateDir = [root, process.env.PG_CDC_SERVICES_STATE_DIR].filter(Boolean).find((d) => existsSync(`${d}/.services.env`));
if (!stateDir) throw new Error('no .services.env: start the test services (npm run services:up) or set PG_CDC_SERVICES_STATE_DIR');
const envFile = Object.fromEntries(
  readFileSync(`${stateDir}/.services.env`, 'utf8')
    .split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const N = Number(process.env.BENCH_TX ?? 100_000);
const BULK = Number(process.env.BENCH_BULK ?? 1_000_000);
const RATE = Number(process.env.BENCH_RATE ?? 5_000);
const RATE_SECONDS = Number(process.env.BENCH_RATE_SECONDS ?? 10);
const COMPARE = process.env.BENCH_COMPARE_DIST ?? null;
const tag = `bench_${Date.now().toString(36)}`;
const limitSlot = `${tag}_limit`;
const pgEnv = { PGHOST: envFile.PGHOST, PGPORT: envFile.PGPORT, PGUSER: envFile.PGUSER, PGDATABASE: envFile.PGDATABASE };
const log = (msg, extra = {}) => process.stdout.write(JSON.stringify({ time: new Date().toISOString(), msg, ...extra }) + '\n');
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);

const c = new pg.Client({ host: pgEnv.PGHOST, port: Number(pgEnv.PGPORT), user: pgEnv.PGUSER, database: pgEnv.PGDATABASE });
await c.connect();
// As the pgbench load (see pgbench()): the bulk transaction commits as on a production server.
await c.query('SET synchronous_commit = on');
const q = (sql, p) => c.query(sql, p);
const lsnNum = (t) => {
  const [h, l] = t.split('/');
  return (BigInt(`0x${h}`) << 32n) | BigInt(`0x${l}`);
};
const lsnText = (l) => `${(l >> 32n).toString(16).toUpperCase()}/${(l & 0xffffffffn).toString(16).toUpperCase()}`;
// The insert position (pg_current_wal_lsn() is the write position, which lags behind a commit made with
// synchronous_commit=off: a mark taken there can fall inside the transaction just committed).
const currentLsn = async () => lsnNum((await q('SELECT pg_current_wal_insert_lsn()::text AS l')).rows[0].l);
const confirmed = async (s) => {
  const r = await q('SELECT confirmed_flush_lsn::text AS l FROM pg_replication_slots WHERE slot_name = $1', [s]);
  return r.rows[0]?.l ? lsnNum(r.rows[0].l) : 0n;
};
/** The current WAL position, then a transactional logical message after it that the reader will confirm. */
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

/** A reader build under test: its dist folder and its own slot and state schema. */
const builds = [{ name: 'current', dist: 'dist', slot: tag, state: `${tag}_state` }];
if (COMPARE) builds.push({ name: 'compare', dist: COMPARE, slot: `${tag}_cmp`, state: `${tag}_cmp_state` });

function startReader(build) {
  const healthPort = 18000 + Math.floor(Math.random() * 1000);
  const env = {
    PATH: process.env.PATH,
    ...pgEnv,
    KAFKA_BROKERS: envFile.KAFKA_BROKERS,
    AZURE_STORAGE_CONNECTION_STRING: envFile.AZURE_STORAGE_CONNECTION_STRING,
    CDC_SLOT: build.slot,
    CDC_PUBLICATION: `${tag}_pub`,
    CDC_TABLES: `${tag}.t`,
    CDC_TOPIC: `${tag}_events`,
    CDC_STATE_SCHEMA: build.state,
    CDC_SNAPSHOT_MODE: 'never',
    HEALTH_PORT: String(healthPort),
    LOG_LEVEL: 'warn',
    DEADLETTER_CONTAINER: tag.replace(/_/g, '-'),
  };
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  // The compiled entry point with the container's heap flags (package.json "reader:dist").
  // BENCH_NODE_FLAGS: more node flags for the reader (e.g. --heap-prof; profiling, not for figures).
  const flags = (process.env.BENCH_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const heap = build.name === 'compare' ? compareHeapFlags() : READER_HEAP_FLAGS;
  const proc = spawn(process.execPath, [...prof, ...flags, ...heap, `${build.dist}/src/reader/main.js`], {
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
const broker = brokerPid(envFile.KAFKA_BROKERS);
/** The walsender serving a slot, once it is active (null if it did not start within a few seconds). */
async function walsenderOf(slot) {
  for (let i = 0; i < 200; i++) {
    const r = await q('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (r.rows[0]?.active_pid) return r.rows[0].active_pid;
    await new Promise((res) => setTimeout(res, 10));
  }
  return null;
}
/** CPU µs per change between two readings, or null when either is missing. */
const usPer = (a, b, n) => (a === null || b === null ? null : +(((b - a) * 1e6) / n).toFixed(2));
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
/**
 * Moves an inactive slot to the current WAL position (so a build sees only the WAL of its own phases).
 * A checkpoint first: it logs the running transactions, which is what lets the advance move the slot's
 * restart_lsn too. Without it restart_lsn can stay before the last phase's bulk transaction, and the
 * walsender then decodes that again (tens of MB) before the round's first change, while the ceiling's
 * fresh twin slot starts at the round (`backlogBytes` per round: until 2026-12-03 up to 73 MB, and
 * 2.5× the walsender's CPU per change in those rounds).
 */
async function advance(slot) {
  // The slot keeps a candidate restart point until its confirmed position passes it: a second round
  // (checkpoint, advance) is sometimes needed before restart_lsn moves (seen in 3 of 10 slots).
  for (let attempt = 0; attempt < 4; attempt++) {
    await q('CHECKPOINT');
    await q('SELECT pg_replication_slot_advance($1, pg_current_wal_lsn())', [slot]);
    const r = await q('SELECT (confirmed_flush_lsn - restart_lsn)::float8 AS backlog FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (r.rows[0].backlog < 1024 * 1024) return;
  }
}

/** Phase 2: a build's reader drains the round's single-row transactions. */
async function drain(build, end) {
  // WAL the walsender decodes before the round's first change (from the slot's restart_lsn).
  const slot = (await q('SELECT restart_lsn::text AS r, confirmed_flush_lsn::text AS c FROM pg_replication_slots WHERE slot_name = $1', [build.slot])).rows[0];
  const backlogBytes = Number(lsnNum(slot.c) - lsnNum(slot.r));
  const r = startReader(build);
  await waitReady(r);
  const walsender = await walsenderOf(build.slot);
  const cpu0 = cpuOf(r.proc.pid);
  const ws0 = walsender === null ? null : cpuOf(walsender);
  const br0 = broker === null ? null : cpuOf(broker);
  const r0 = performance.now();
  const r1 = await waitConfirmed(build.slot, end + 1n);
  const cpuUsPerChange = usPer(cpu0, cpuOf(r.proc.pid), N);
  const walsenderCpuUsPerChange = usPer(ws0, walsender === null ? null : cpuOf(walsender), N);
  const brokerCpuUsPerChange = usPer(br0, broker === null ? null : cpuOf(broker), N);
  const stopped = await stopReader(r);
  const seconds = (r1 - r0) / 1000;
  const all = cpuUsPerChange + (walsenderCpuUsPerChange ?? 0) + (brokerCpuUsPerChange ?? 0);
  return {
    changesPerSec: Math.round(N / seconds),
    cpuUsPerChange,
    walsenderCpuUsPerChange,
    brokerCpuUsPerChange,
    boundPerSec: Math.round((cpus().length * 1e6) / all),
    backlogBytes,
    rss: stopped.rss,
  };
}

/** Phases 3 and 4 for a build: a bulk transaction, then a fixed rate. */
async function bulkAndLatency(build) {
  await advance(build.slot);
  const r = startReader(build);
  await waitReady(r);
  const cpu0 = cpuOf(r.proc.pid);
  await q(`INSERT INTO ${tag}.t (v, note) SELECT g, 'bulk row ' || g FROM generate_series(1, ${BULK}) g`);
  const committed = performance.now();
  const bulkMark = await markEnd();
  const b1 = await waitConfirmed(build.slot, bulkMark + 1n);
  const bulkCpu = cpuOf(r.proc.pid) - cpu0;
  const bulkRowsPerSec = Math.round(BULK / ((b1 - committed) / 1000));
  pgbench(['-c', '4', '-j', '2', '-R', String(RATE), '-T', '2'], `INSERT INTO ${tag}.t (v, note) VALUES (2, 'warm-up');\n`);
  await waitConfirmed(build.slot, (await markEnd()) + 1n);
  await fetch(`http://127.0.0.1:${r.port}/metrics/reset`, { method: 'POST' });
  const out = pgbench(['-c', '4', '-j', '2', '-R', String(RATE), '-T', String(RATE_SECONDS)], `INSERT INTO ${tag}.t (v, note) VALUES (2, 'paced');\n`);
  const achieved = /tps = ([\d.]+)/.exec(out);
  await waitConfirmed(build.slot, (await markEnd()) + 1n);
  const stopped = await stopReader(r);
  return {
    bulkRowsPerSec,
    bulkCpuUsPerRow: +((bulkCpu * 1e6) / BULK).toFixed(2),
    rateAchieved: achieved ? Math.round(Number(achieved[1])) : null,
    p50Ms: +stopped.metrics.commitToAckMs.p50.toFixed(2),
    p99Ms: +stopped.metrics.commitToAckMs.p99.toFixed(2),
    latencySamples: stopped.metrics.commitToAckMs.count,
    rss: stopped.rss,
  };
}

/**
 * The round's ceiling: pg_recvlogical decodes the WAL to its end position into /dev/null. Also the CPU
 * µs per change of its walsender (sampled every 10 ms until it exits, so its last few ms can be missed)
 * and of pg_recvlogical itself (/usr/bin/time).
 */
async function recvlogical(endPos) {
  const timeFile = `/tmp/${tag}.time`;
  const args = ['-h', pgEnv.PGHOST, '-p', pgEnv.PGPORT, '-U', pgEnv.PGUSER, '-d', pgEnv.PGDATABASE, '--slot', limitSlot, '--start', '--no-loop'];
  args.push('-o', 'proto_version=1', '-o', `publication_names=${tag}_pub`, '--endpos', lsnText(endPos), '-f', '-');
  const t0 = performance.now();
  const proc = spawn('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, 'sh', '-c', 'exec "$@" > /dev/null', 'pg_recvlogical', 'pg_recvlogical', ...args], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const exited = new Promise((r) => proc.on('exit', (code) => r(code)));
  let done = false;
  void exited.then(() => (done = true));
  const walsender = await walsenderOf(limitSlot);
  const ws0 = walsender === null ? null : cpuOf(walsender);
  let wsLast = ws0;
  while (!done && walsender !== null) {
    wsLast = cpuOf(walsender) ?? wsLast;
    await new Promise((r) => setTimeout(r, 10));
  }
  const code = await exited;
  const seconds = (performance.now() - t0) / 1000;
  if (code !== 0) throw new Error(`pg_recvlogical exited with ${code}`);
  const [user, sys] = readFileSync(timeFile, 'utf8').trim().split('\n').pop().split(' ').map(Number);
  return {
    limitPerSec: Math.round(N / seconds),
    limitWalsenderCpuUsPerChange: usPer(ws0, wsLast, N),
    recvlogicalCpuUsPerChange: +(((user + sys) * 1e6) / N).toFixed(2),
  };
}

const stats = (xs) => {
  const s = xs.filter((x) => typeof x === 'number').sort((a, b) => a - b);
  if (s.length === 0) return null;
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median: +median.toFixed(3), min: s[0], max: s[s.length - 1] };
};

const result = {
  measuredAt: new Date().toISOString(),
  machine: { cpus: cpus().length, node: process.version },
  rounds: ROUNDS,
  heapFlags: READER_HEAP_FLAGS,
  transactions: N,
  bulkRows: BULK,
  rateTarget: RATE,
  rateSeconds: RATE_SECONDS,
  loadAverageBefore: loadavg(),
};
const perBuild = Object.fromEntries(builds.map((b) => [b.name, []]));
try {
  await q(`CREATE SCHEMA ${tag}; CREATE TABLE ${tag}.t (id bigserial PRIMARY KEY, v int NOT NULL, note text)`);
  // Slots, publication, state schemas: created by a first short run of each build.
  for (const b of builds) {
    const r = startReader(b);
    await waitReady(r);
    await stopReader(r);
  }
  for (let round = 1; round <= ROUNDS; round++) {
    // Every slot at the same point: the round's WAL only.
    for (const b of builds) await advance(b.slot);
    await q(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [limitSlot]);
    pgbench(['-c', '4', '-j', '2', '-t', String(Math.ceil(N / 4))], `INSERT INTO ${tag}.t (v, note) VALUES (1, 'single-row transaction');\n`);
    const end = await markEnd();
    const endPos = await currentLsn();
    const load = loadavg();
    const limit = await recvlogical(endPos);
    const { limitPerSec } = limit;
    await q('SELECT pg_drop_replication_slot($1)', [limitSlot]);
    // Alternate the order of the builds between rounds, so neither always runs first.
    const order = round % 2 === 1 ? builds : [...builds].reverse();
    const rows = {};
    for (const b of order) {
      const d = await drain(b, end);
      rows[b.name] = { ...limit, ...d, ratio: +(d.changesPerSec / limitPerSec).toFixed(3) };
    }
    for (const b of order) {
      const l = await bulkAndLatency(b);
      const row = rows[b.name];
      Object.assign(row, l, { peakRssMb: Math.round(Math.max(row.rss, l.rss)), loadAverage: load });
      delete row.rss;
      perBuild[b.name].push(row);
      log(`round ${round}`, { build: b.name, ...row });
    }
  }
} finally {
  await q('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = ANY($1) AND NOT active', [
    [limitSlot, ...builds.map((b) => b.slot)],
  ]).catch(() => undefined);
  await q(`DROP PUBLICATION IF EXISTS ${tag}_pub; DROP SCHEMA IF EXISTS ${tag} CASCADE`).catch(() => undefined);
  for (const b of builds) await q(`DROP SCHEMA IF EXISTS ${b.state} CASCADE`).catch(() => undefined);
  await c.end();
}
const FIGURES = [
  'limitPerSec',
  'limitWalsenderCpuUsPerChange',
  'recvlogicalCpuUsPerChange',
  'changesPerSec',
  'ratio',
  'cpuUsPerChange',
  'walsenderCpuUsPerChange',
  'brokerCpuUsPerChange',
  'boundPerSec',
  'bulkRowsPerSec',
  'bulkCpuUsPerRow',
  'rateAchieved',
  'p50Ms',
  'p99Ms',
  'peakRssMb',
];
const summary = (rows) => Object.fromEntries(FIGURES.map((f) => [f, stats(rows.map((r) => r[f]))]));
Object.assign(result, summary(perBuild.current), { loadAverageAfter: loadavg(), perRound: perBuild.current });
if (COMPARE) result.compare = { dist: COMPARE, heapFlags: compareHeapFlags(), ...summary(perBuild.compare), perRound: perBuild.compare };
result.targets = { ratio: 0.95, bulkRowsPerSec: 100_000, p99Ms: 50, peakRssMb: 200 };
result.command = 'npm run bench:reader';
// The size and A/B settings of this run (unset: the defaults above).
result.env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_')));
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL(process.env.BENCH_READER_OUT ?? './results/reader.json', import.meta.url), JSON.stringify(result, null, 2) + '\n');
log('result', Object.fromEntries(Object.entries(result).filter(([k]) => k !== 'perRound')));
