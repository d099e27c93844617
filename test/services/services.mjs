// @ts-check
/**
 * Real test services without Docker: PostgreSQL (wal_level=logical), Apache Kafka (KRaft),
 * Elasticsearch and Azurite, each started as a local process on free ports.
 *
 * - `up()` starts what is not already running (or reuses the services a previous `up()` started,
 *   after probing them), and writes the endpoints to `.services.env`.
 * - An endpoint already given in the environment (PGHOST, KAFKA_BROKERS, ELASTICSEARCH_URL,
 *   AZURE_STORAGE_CONNECTION_STRING) is used as is: nothing is started for it. That is how the same
 *   tests run against `docker compose` services or the Event Hubs emulator.
 * - `down()` stops what `up()` started and removes its temporary directories.
 * - Persistent mode (`up({ stateDir, workDir })`, used by `npm start`): the data lives in `workDir`
 *   and is reused by the next `up` (no initdb, no Kafka storage format, same Elasticsearch and Azurite
 *   data; the previous ports when they are still free), and `down({ stateDir, keepData: true })`
 *   stops the processes but keeps the data.
 *
 * Readiness is probed over each service's own protocol, never slept on. On failure the service's
 * log tail and the likely fix are printed.
 */
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..', '..');
// PG_CDC_SERVICES_STATE_DIR lets a second, independent set of services run beside the usual one
// (the orchestrator's own lifecycle test uses it).
const defaultStateDir = process.env.PG_CDC_SERVICES_STATE_DIR ?? repoRoot;
/** Where an orchestrator with state directory `stateDir` keeps its endpoints and its state. */
const filesOf = (stateDir = defaultStateDir) => ({
  envFile: path.join(stateDir, '.services.env'),
  stateFile: path.join(stateDir, '.services.state.json'),
});
export const envFile = filesOf().envFile;

export const KAFKA_VERSION = '4.1.1';
export const ELASTICSEARCH_VERSION = '8.19.21';

/** Where Maven puts the Kafka jars and the unpacked Elasticsearch: world-readable, because
 * Elasticsearch and PostgreSQL refuse to run as root and so run as the `postgres` user. */
const servicesHome = process.env.PG_CDC_SERVICES_HOME ?? path.join('/var/tmp', 'pg-cdc-functions-services');

/** The environment variable that, when set, means "use this endpoint, start nothing". */
const OVERRIDES = {
  postgres: 'PGHOST',
  kafka: 'KAFKA_BROKERS',
  elasticsearch: 'ELASTICSEARCH_URL',
  azurite: 'AZURE_STORAGE_CONNECTION_STRING',
};

const log = (msg) => process.stderr.write(`[services] ${msg}\n`);

export class ServiceError extends Error {
  /** @param {string} service @param {string} message @param {string} fix @param {string} [logTail] */
  constructor(service, message, fix, logTail) {
    super(`${service}: ${message}\n  likely fix: ${fix}` + (logTail ? `\n  last lines of the ${service} log:\n${indent(logTail)}` : ''));
    this.name = 'ServiceError';
  }
}

const indent = (text) =>
  text
    .split('\n')
    .map((l) => `    | ${l}`)
    .join('\n');

function tail(file, lines = 25) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log written)';
  }
}

/** A free TCP port on the loopback interface, none of `avoid`. */
export async function freePort(avoid = new Set()) {
  // The kernel can hand the same ephemeral port to two binds in a row once the first is released,
  // so a caller that needs several distinct ports passes the ones it already holds.
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.unref();
      srv.on('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const addr = srv.address();
        const port = typeof addr === 'object' && addr ? addr.port : 0;
        srv.close(() => resolve(port));
      });
    });
    if (!avoid.has(port)) return port;
  }
  throw new Error(`no free port outside ${[...avoid].join(', ')} after 20 attempts`);
}

async function isFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * One port per entry of `preferred`, all distinct: each preferred port when nothing listens on it (a
 * persistent service keeps its endpoint from one run to the next, and Kafka's KRaft controller keeps
 * its address), else a fresh free port that is none of the others. Without the check across entries a
 * fresh port for one listener could equal another listener's preferred (and just released) port, and
 * the service would then bind the same port twice and exit during start-up.
 */
export async function portsFor(...preferred) {
  const taken = new Set(preferred.filter((p) => p));
  const chosen = [];
  for (const p of preferred) chosen.push(p && !chosen.includes(p) && (await isFree(p)) ? p : undefined);
  for (const [i, c] of chosen.entries()) {
    if (c !== undefined) continue;
    chosen[i] = await freePort(taken);
    taken.add(chosen[i]);
  }
  return chosen;
}

/** Polls `probe` until it returns true, the process dies, or the deadline passes. */
async function waitUntil(what, probe, { timeoutMs, pid, intervalMs = 250 }) {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    if (pid !== undefined && !isAlive(pid)) return { ok: false, reason: `${what} exited during start-up` };
    try {
      if (await probe()) return { ok: true };
    } catch (err) {
      lastError = err instanceof Error ? err.message : String(err);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  return { ok: false, reason: `${what} not ready after ${Math.round(timeoutMs / 1000)} s${lastError ? ` (last probe error: ${lastError})` : ''}` };
}

export function isAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

/** Signals the process group `pid` leads (a detached child), else the process alone; a process already gone is no error. @param {number} pid @param {NodeJS.Signals} signal */
export function signalGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      process.kill(pid, signal);
    } catch {
      /* already gone */
    }
  }
}

/** Stops a process group (SIGTERM, then SIGKILL after `graceMs`), waiting until it is gone. */
async function stopGroup(pid, graceMs = 20_000) {
  if (!isAlive(pid)) return;
  const kill = (sig) => signalGroup(pid, sig);
  kill('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline && (isAlive(pid) || groupAlive(pid))) await new Promise((r) => setTimeout(r, 100));
  if (isAlive(pid) || groupAlive(pid)) {
    kill('SIGKILL');
    while (isAlive(pid) || groupAlive(pid)) await new Promise((r) => setTimeout(r, 50));
  }
}

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The unprivileged user that runs PostgreSQL and Elasticsearch when we are root. */
export function serviceUser() {
  if (process.getuid?.() !== 0) return null;
  const user = process.env.PG_CDC_SERVICES_USER ?? 'postgres';
  try {
    const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim());
    return { user, uid, gid };
  } catch {
    throw new ServiceError(
      'setup',
      `running as root, and the user '${user}' that should run PostgreSQL and Elasticsearch (both refuse root) does not exist`,
      `install PostgreSQL (apt-get install -y postgresql), which creates it, or set PG_CDC_SERVICES_USER to another unprivileged user`,
    );
  }
}

/** Whether the user that runs the services (ourselves, or the unprivileged one when we are root) can reach `dir`: every parent searchable. */
export function serviceUserCanReach(dir) {
  const owner = serviceUser();
  if (!owner) return true;
  return spawnSync('test', ['-x', dir], { uid: owner.uid, gid: owner.gid }).status === 0;
}

/** As root, the unprivileged service user must be able to reach `dir` (every parent searchable). */
function assertReachable(dir) {
  if (serviceUserCanReach(dir)) return;
  const owner = serviceUser();
  throw new ServiceError(
    'setup',
    `the user '${owner?.user}', which runs PostgreSQL and Elasticsearch when you are root, cannot reach ${dir}`,
    `make every parent directory searchable (chmod o+x), or keep the data somewhere it can reach, e.g. under /var/tmp`,
  );
}

function chownR(dir, owner) {
  if (owner) execFileSync('chown', ['-R', `${owner.uid}:${owner.gid}`, dir]);
}

function spawnDetached(cmd, args, { logFile, env, cwd, owner }) {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(cmd, args, {
    detached: true, // own process group, so `down` can stop the JVM and everything it forks
    stdio: ['ignore', out, out],
    env: { ...process.env, ...env },
    cwd,
    ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
  });
  fs.closeSync(out);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not spawn ${cmd}`);
  return child.pid;
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

function pgBinDir() {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const root = '/usr/lib/postgresql';
  const versions = fs.existsSync(root) ? fs.readdirSync(root).filter((v) => Number(v) >= 15 && fs.existsSync(path.join(root, v, 'bin', 'initdb'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions[0]) return path.join(root, versions[0], 'bin');
  try {
    const dir = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    if (fs.existsSync(path.join(dir, 'initdb'))) return dir;
  } catch {
    /* fall through */
  }
  throw new ServiceError(
    'postgres',
    'PostgreSQL 15+ server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql',
    'apt-get update && apt-get install -y postgresql (or set PG_BINDIR, or set PGHOST to use a running server with wal_level=logical)',
  );
}

/**
 * Starts a PostgreSQL server in `workDir` (also used by tests that need a server of their own, e.g.
 * with TLS: `extraConf` lines are appended to postgresql.conf, and win over the defaults above them).
 * `persistent`: a data directory left by an earlier start (PG_VERSION there) is started as it is,
 * with its slots and tables; `ports.port` is tried first.
 */
export async function startPostgres(workDir, { extraConf = [], password, persistent = false, ports = {} } = {}) {
  const bin = pgBinDir();
  const owner = serviceUser();
  const dir = path.join(workDir, 'postgres');
  const data = path.join(dir, 'data');
  fs.mkdirSync(dir, { recursive: true });
  chownR(dir, owner);
  const logFile = path.join(dir, 'postgres.log');
  const [port] = await portsFor(ports.port);
  const asOwner = owner ? { uid: owner.uid, gid: owner.gid } : {};
  if (!(persistent && fs.existsSync(path.join(data, 'PG_VERSION')))) initPostgres({ bin, dir, data, owner, asOwner, password, persistent, extraConf });
  // The port is given on the command line (it wins over postgresql.conf), so a kept data directory
  // can come back on another port when its old one is taken.
  const start = spawnSync(path.join(bin, 'pg_ctl'), ['-D', data, '-l', logFile, '-o', `-p ${port}`, '-w', '-t', '60', 'start'], {
    encoding: 'utf8',
    ...asOwner,
  });
  if (start.status !== 0) {
    throw new ServiceError(
      'postgres',
      `pg_ctl start failed (exit ${start.status})`,
      'see the log; a port clash or too little shared memory are the usual causes',
      tail(logFile),
    );
  }
  const pid = Number(fs.readFileSync(path.join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
  const endpoint = {
    PGHOST: '127.0.0.1',
    PGPORT: String(port),
    PGUSER: 'postgres',
    PGDATABASE: 'postgres',
    ...(password === undefined ? {} : { PGPASSWORD: password }),
  };
  const ready = await waitUntil('postgres', () => probePostgres(endpoint), { timeoutMs: 60_000, pid });
  if (!ready.ok) throw new ServiceError('postgres', ready.reason ?? 'not ready', 'see the log', tail(logFile));
  return { pid, dir, logFile, bin, data, owner: owner?.user ?? null, endpoint, ports: { port } };
}

/** initdb and the service's postgresql.conf lines. */
function initPostgres({ bin, dir, data, owner, asOwner, password, persistent, extraConf }) {
  // With a password the server authenticates every connection (scram-sha-256); else it trusts them.
  let auth = ['-A', 'trust'];
  if (password !== undefined) {
    const pwfile = path.join(dir, 'pwfile');
    fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
    chownR(dir, owner);
    auth = ['-A', 'scram-sha-256', `--pwfile=${pwfile}`];
  }
  const init = spawnSync(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', ...auth, '-E', 'UTF8', '--no-sync'], {
    encoding: 'utf8',
    ...asOwner,
  });
  if (init.status !== 0) {
    throw new ServiceError(
      'postgres',
      `initdb failed (exit ${init.status})`,
      'check that the data directory is writable by the service user',
      `${init.stdout}\n${init.stderr}`,
    );
  }
  // Logical decoding for the reader; enough slots/senders for parallel test suites; durability
  // traded for speed (only the reader is killed in crash tests, never the server), except for data
  // meant to outlive the run.
  const conf = [
    `listen_addresses = '127.0.0.1'`,
    `unix_socket_directories = '${dir}'`,
    `wal_level = logical`,
    `max_replication_slots = 64`,
    `max_wal_senders = 64`,
    `max_connections = 200`,
    ...(persistent ? [] : [`fsync = off`, `synchronous_commit = off`, `full_page_writes = off`]),
    `shared_buffers = 256MB`,
    `logical_decoding_work_mem = 64MB`,
    `wal_sender_timeout = 60s`,
    `log_min_messages = warning`,
    ...extraConf,
  ].join('\n');
  fs.appendFileSync(path.join(data, 'postgresql.conf'), `\n# pg-cdc-functions test service\n${conf}\n`);
}

async function probePostgres(env) {
  const { default: pg } = await import('pg');
  const client = new pg.Client({
    host: env.PGHOST,
    port: Number(env.PGPORT),
    user: env.PGUSER,
    password: env.PGPASSWORD,
    database: env.PGDATABASE,
    ssl: false,
    connectionTimeoutMillis: 2000,
  });
  try {
    await client.connect();
    const res = await client.query('show wal_level');
    return res.rows[0]?.wal_level === 'logical';
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function stopPostgres(svc) {
  if (!isAlive(svc.pid)) return;
  const asOwner = svc.owner
    ? (() => {
        const o = serviceUser();
        return o ? { uid: o.uid, gid: o.gid } : {};
      })()
    : {};
  const r = spawnSync(path.join(svc.bin, 'pg_ctl'), ['-D', svc.data, '-m', 'fast', '-w', '-t', '60', 'stop'], { encoding: 'utf8', ...asOwner });
  if (r.status !== 0) await stopGroup(svc.pid);
}

// ---------------------------------------------------------------------------------------------
// Maven-fetched services (Kafka, Elasticsearch)

/** Fetches Kafka's jars and Elasticsearch's distribution with Maven (cached in ~/.m2). */
function ensureMavenArtifacts() {
  const kafkaLibs = path.join(servicesHome, `kafka-${KAFKA_VERSION}`, 'libs');
  const esHome = path.join(servicesHome, `elasticsearch-${ELASTICSEARCH_VERSION}`);
  const marker = path.join(servicesHome, `.complete-${KAFKA_VERSION}-${ELASTICSEARCH_VERSION}`);
  if (fs.existsSync(marker)) return { kafkaLibs, esHome };
  fs.mkdirSync(servicesHome, { recursive: true });
  fs.chmodSync(servicesHome, 0o755);
  log(`fetching Kafka ${KAFKA_VERSION} and Elasticsearch ${ELASTICSEARCH_VERSION} with Maven into ${servicesHome} (cached in ~/.m2)`);
  const started = Date.now();
  const mvn = spawnSync(
    'mvn',
    [
      '-B',
      '-q',
      '-f',
      path.join(here, 'pom.xml'),
      `-Dservices.home=${servicesHome}`,
      `-Dkafka.version=${KAFKA_VERSION}`,
      `-Delasticsearch.version=${ELASTICSEARCH_VERSION}`,
      'package',
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (mvn.status !== 0) {
    throw new ServiceError(
      'maven',
      `fetching Kafka/Elasticsearch failed (exit ${mvn.status ?? mvn.error?.message})`,
      'check that Maven (apt-get install -y maven) and Maven Central are reachable; or set KAFKA_BROKERS / ELASTICSEARCH_URL to running services',
      `${mvn.stdout}\n${mvn.stderr}`.trim().split('\n').slice(-25).join('\n'),
    );
  }
  // Everything below servicesHome must be readable by the unprivileged service user.
  execFileSync('chmod', ['-R', 'a+rX', servicesHome]);
  fs.writeFileSync(marker, new Date().toISOString());
  log(`Maven fetch done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { kafkaLibs, esHome };
}

function javaHome(minMajor) {
  /** @type {string[]} */
  const candidates = [];
  if (process.env.JAVA_HOME) candidates.push(process.env.JAVA_HOME);
  try {
    const java = fs.realpathSync(execFileSync('which', ['java'], { encoding: 'utf8' }).trim());
    candidates.push(path.resolve(path.dirname(java), '..'));
  } catch {
    /* none on PATH */
  }
  if (fs.existsSync('/usr/lib/jvm')) for (const d of fs.readdirSync('/usr/lib/jvm')) candidates.push(path.join('/usr/lib/jvm', d));
  for (const home of candidates) {
    const release = path.join(home, 'release');
    if (!fs.existsSync(path.join(home, 'bin', 'java')) || !fs.existsSync(release)) continue;
    const m = /JAVA_VERSION="(\d+)/.exec(fs.readFileSync(release, 'utf8'));
    if (m && Number(m[1]) >= minMajor) return home;
  }
  throw new ServiceError('java', `no JDK ${minMajor}+ found (JAVA_HOME, PATH, /usr/lib/jvm)`, `apt-get install -y openjdk-17-jre-headless, or set JAVA_HOME`);
}

// ---------------------------------------------------------------------------------------------
// Kafka

/**
 * `persistent`: a log directory formatted by an earlier start (meta.properties there) is kept, with
 * its topics and committed offsets; the previous broker and controller ports are tried first (the
 * single KRaft voter is named by node id, so a changed controller port is also accepted).
 */
async function startKafka(workDir, { persistent = false, ports = {} } = {}) {
  const { kafkaLibs } = ensureMavenArtifacts();
  const java = path.join(javaHome(17), 'bin', 'java');
  const dir = path.join(workDir, 'kafka');
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const logFile = path.join(dir, 'kafka.log');
  const [port, controllerPort] = await portsFor(ports.port, ports.controllerPort);
  const props = path.join(dir, 'server.properties');
  fs.writeFileSync(
    props,
    [
      'process.roles=broker,controller',
      'node.id=1',
      `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
      `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
      'controller.listener.names=CONTROLLER',
      'inter.broker.listener.name=PLAINTEXT',
      'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      `log.dirs=${path.join(dir, 'data')}`,
      'num.partitions=1',
      'auto.create.topics.enable=true',
      'offsets.topic.replication.factor=1',
      'offsets.topic.num.partitions=4',
      'transaction.state.log.replication.factor=1',
      'transaction.state.log.min.isr=1',
      'share.coordinator.state.topic.replication.factor=1',
      'share.coordinator.state.topic.min.isr=1',
      'group.initial.rebalance.delay.ms=0',
      // Event Hubs rejects records over 1 MB; the test broker does the same so oversize handling is real.
      'message.max.bytes=1048576',
      'log.flush.interval.messages=9223372036854775807',
    ].join('\n') + '\n',
  );
  const log4j = path.join(dir, 'log4j2.properties');
  fs.writeFileSync(
    log4j,
    [
      'appender.out.type=Console',
      'appender.out.name=OUT',
      'appender.out.layout.type=PatternLayout',
      'appender.out.layout.pattern=[%d] %p %m (%c)%n',
      'rootLogger.level=WARN',
      'rootLogger.appenderRef.out.ref=OUT',
      'logger.server.name=kafka.server.KafkaRaftServer',
      'logger.server.level=INFO',
    ].join('\n') + '\n',
  );
  const cp = `${kafkaLibs}/*`;
  const jvm = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', '-XX:TieredStopAtLevel=1', '-Djava.awt.headless=true', `-Dlog4j2.configurationFile=${log4j}`, '-cp', cp];
  const clusterId = randomBytes(16).toString('base64url');
  // `--cluster-id=<id>`, not `-t <id>`: one id in 64 starts with '-', which the tool's argument
  // parser then takes for an option ("argument --cluster-id/-t: expected one argument").
  const formatted = persistent && fs.existsSync(path.join(dir, 'data', 'meta.properties'));
  const format = formatted
    ? { status: 0, stdout: '', stderr: '' }
    : spawnSync(java, [...jvm, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '-c', props], { encoding: 'utf8' });
  if (format.status !== 0) {
    throw new ServiceError(
      'kafka',
      `storage format failed (exit ${format.status})`,
      'check the JDK (17+) and the jars fetched by Maven',
      `${format.stdout}\n${format.stderr}`,
    );
  }
  const pid = spawnDetached(java, [...jvm, 'kafka.Kafka', props], { logFile, cwd: dir });
  const endpoint = { KAFKA_BROKERS: `127.0.0.1:${port}` };
  const ready = await waitUntil('kafka', () => probeKafka(endpoint.KAFKA_BROKERS), { timeoutMs: 90_000, pid, intervalMs: 500 });
  if (!ready.ok) {
    await stopGroup(pid, 5000);
    throw new ServiceError('kafka', ready.reason ?? 'not ready', 'see the log; a JDK older than 17 or a port clash are the usual causes', tail(logFile));
  }
  return { pid, dir, logFile, endpoint, ports: { port, controllerPort } };
}

/**
 * Kafka readiness: a real ApiVersions + Metadata round trip with a client library, which only
 * succeeds once the KRaft controller has elected itself and the broker is unfenced.
 */
async function probeKafka(brokers) {
  const { Kafka, logLevel } = await import('kafkajs');
  const admin = new Kafka({
    brokers: brokers.split(','),
    clientId: 'services-probe',
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 2000,
    requestTimeout: 5000,
  }).admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null && cluster.controller >= 0;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

// ---------------------------------------------------------------------------------------------
// Elasticsearch

/** `persistent`: path.data is simply kept (Elasticsearch recovers its indices from it); the previous ports are tried first. */
async function startElasticsearch(workDir, { ports = {} } = {}) {
  const { esHome } = ensureMavenArtifacts();
  const owner = serviceUser();
  const dir = path.join(workDir, 'elasticsearch');
  const conf = path.join(dir, 'config');
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'logs'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  fs.cpSync(path.join(esHome, 'config'), conf, { recursive: true });
  const [port, transportPort] = await portsFor(ports.port, ports.transportPort);
  fs.writeFileSync(
    path.join(conf, 'elasticsearch.yml'),
    [
      'cluster.name: pg-cdc-functions-test',
      'node.name: node-1',
      'discovery.type: single-node',
      'network.host: 127.0.0.1',
      `http.port: ${port}`,
      `transport.port: ${transportPort}`,
      `path.data: ${path.join(dir, 'data')}`,
      `path.logs: ${path.join(dir, 'logs')}`,
      'xpack.security.enabled: false',
      // A test machine's disk may be fuller than the production watermarks allow.
      'cluster.routing.allocation.disk.threshold_enabled: false',
      'action.destructive_requires_name: false',
    ].join('\n') + '\n',
  );
  fs.mkdirSync(path.join(conf, 'jvm.options.d'), { recursive: true });
  fs.writeFileSync(path.join(conf, 'jvm.options.d', 'test.options'), '-Xms512m\n-Xmx512m\n-XX:TieredStopAtLevel=1\n');
  chownR(dir, owner);
  const logFile = path.join(dir, 'elasticsearch.out');
  const pid = spawnDetached(path.join(esHome, 'bin', 'elasticsearch'), [], {
    logFile,
    cwd: dir,
    owner,
    env: { ES_JAVA_HOME: javaHome(17), ES_PATH_CONF: conf, ES_TMPDIR: path.join(dir, 'tmp'), JAVA_HOME: '' },
  });
  const url = `http://127.0.0.1:${port}`;
  const ready = await waitUntil('elasticsearch', () => probeElasticsearch(url), { timeoutMs: 120_000, pid, intervalMs: 500 });
  if (!ready.ok) {
    await stopGroup(pid, 5000);
    const esLog = path.join(dir, 'logs', 'pg-cdc-functions-test.log');
    throw new ServiceError(
      'elasticsearch',
      ready.reason ?? 'not ready',
      'see the log; vm.max_map_count too low (sysctl -w vm.max_map_count=262144) or a JDK older than 17 are the usual causes',
      `${tail(logFile, 10)}\n${tail(esLog, 15)}`,
    );
  }
  return { pid, dir, logFile, endpoint: { ELASTICSEARCH_URL: url }, ports: { port, transportPort } };
}

async function probeElasticsearch(url) {
  const res = await fetch(`${url}/_cluster/health?wait_for_status=yellow&timeout=1s`, { signal: AbortSignal.timeout(3000) });
  return res.status === 200 && res.headers.get('x-elastic-product') === 'Elasticsearch';
}

// ---------------------------------------------------------------------------------------------
// Azurite

const AZURITE_ACCOUNT = 'devstoreaccount1';
// Azurite's well-known development key (public, documented by Microsoft; not a secret).
const AZURITE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

/** `persistent`: Azurite's `--location` is simply kept; the previous ports are tried first. */
async function startAzurite(workDir, { ports = {} } = {}) {
  const dir = path.join(workDir, 'azurite');
  fs.mkdirSync(dir, { recursive: true });
  const logFile = path.join(dir, 'azurite.log');
  const [blobPort, queuePort, tablePort] = await portsFor(ports.blobPort, ports.queuePort, ports.tablePort);
  const bin = path.join(repoRoot, 'node_modules', 'azurite', 'dist', 'src', 'azurite.js');
  if (!fs.existsSync(bin)) throw new ServiceError('azurite', `${bin} not found`, 'run npm ci first (azurite is a devDependency)');
  const pid = spawnDetached(
    process.execPath,
    [
      bin,
      '--location',
      dir,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(blobPort),
      '--queueHost',
      '127.0.0.1',
      '--queuePort',
      String(queuePort),
      '--tableHost',
      '127.0.0.1',
      '--tablePort',
      String(tablePort),
      '--skipApiVersionCheck',
      '--loose',
      '--disableTelemetry',
    ],
    { logFile, cwd: dir },
  );
  const blob = `http://127.0.0.1:${blobPort}/${AZURITE_ACCOUNT}`;
  const connection = `DefaultEndpointsProtocol=http;AccountName=${AZURITE_ACCOUNT};AccountKey=${AZURITE_KEY};BlobEndpoint=${blob};QueueEndpoint=http://127.0.0.1:${queuePort}/${AZURITE_ACCOUNT};TableEndpoint=http://127.0.0.1:${tablePort}/${AZURITE_ACCOUNT};`;
  const ready = await waitUntil('azurite', () => probeAzurite(connection), { timeoutMs: 60_000, pid });
  if (!ready.ok) {
    await stopGroup(pid, 5000);
    throw new ServiceError('azurite', ready.reason ?? 'not ready', 'see the log; run npm ci if azurite is missing', tail(logFile));
  }
  return { pid, dir, logFile, endpoint: { AZURE_STORAGE_CONNECTION_STRING: connection }, ports: { blobPort, queuePort, tablePort } };
}

/** Azurite readiness: a signed Blob and Queue service call through the real SDK. */
async function probeAzurite(connection) {
  const { BlobServiceClient } = await import('@azure/storage-blob');
  const props = await BlobServiceClient.fromConnectionString(connection).getProperties();
  return props._response.status === 200;
}

// ---------------------------------------------------------------------------------------------
// Orchestration

const SERVICES = {
  postgres: { start: startPostgres, stop: stopPostgres, probe: (e) => probePostgres(e) },
  kafka: { start: startKafka, stop: (s) => stopGroup(s.pid), probe: (e) => probeKafka(e.KAFKA_BROKERS) },
  elasticsearch: { start: startElasticsearch, stop: (s) => stopGroup(s.pid, 30_000), probe: (e) => probeElasticsearch(e.ELASTICSEARCH_URL) },
  azurite: { start: startAzurite, stop: (s) => stopGroup(s.pid), probe: (e) => probeAzurite(e.AZURE_STORAGE_CONNECTION_STRING) },
};

/**
 * The orchestrator's state: the work directory, the services it runs, and (persistent mode) the
 * ports of services stopped with their data kept, tried first when they start again.
 */
function readState(stateFile) {
  try {
    return { ports: {}, ...JSON.parse(fs.readFileSync(stateFile, 'utf8')) };
  } catch {
    return { workDir: null, services: {}, ports: {} };
  }
}

function writeState(stateFile, state) {
  fs.writeFileSync(stateFile, JSON.stringify(state, null, 2) + '\n');
}

function writeEnvFile(envFile, env) {
  const lines = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  fs.writeFileSync(envFile, `# written by npm run services:up; removed by npm run services:down\n${lines.join('\n')}\n`);
}

/** Parses `.services.env` (KEY=VALUE lines). */
export function readEnvFile(file = envFile) {
  /** @type {Record<string, string>} */
  const env = {};
  if (!fs.existsSync(file)) return env;
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m && m[1] !== undefined && m[2] !== undefined) env[m[1]] = m[2];
  }
  return env;
}

/**
 * Whether a service from an earlier `up` still serves. Its process being alive is not enough (the
 * port could be another's), but one slow probe is not death either: on a loaded machine a JVM can
 * take seconds to answer, so the probe gets a grace period before the service is replaced.
 */
async function alive(name, svc) {
  if (!svc || !isAlive(svc.pid)) return false;
  const result = await waitUntil(name, () => SERVICES[name].probe(svc.endpoint), { timeoutMs: 20_000, pid: svc.pid, intervalMs: 500 });
  return result.ok;
}

/**
 * Starts every service not given by the environment and not already running (from an earlier `up`).
 * - `stateDir`: where `.services.env` and the state file go (default PG_CDC_SERVICES_STATE_DIR, else
 *   the repo root).
 * - `workDir`: persistent mode. The services' data goes there and is reused by the next `up` with the
 *   same `workDir` (stop with `down({ keepData: true })`); without it, a temporary directory.
 * @param {{ only?: string[], stateDir?: string, workDir?: string }} [opts]
 * @returns {Promise<{ env: Record<string,string>, startedNow: string[], reused: string[], pids: Record<string, number>, timings: Record<string, number> }>}
 */
export async function up(opts = {}) {
  const names = opts.only ?? Object.keys(SERVICES);
  const { envFile, stateFile } = filesOf(opts.stateDir);
  const persistent = opts.workDir !== undefined;
  const state = readState(stateFile);
  if (persistent) {
    state.workDir = path.resolve(/** @type {string} */ (opts.workDir));
    fs.mkdirSync(state.workDir, { recursive: true });
    fs.chmodSync(state.workDir, 0o755);
    assertReachable(state.workDir);
  } else if (!state.workDir || !fs.existsSync(state.workDir)) {
    state.workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-cdc-services-'));
    fs.chmodSync(state.workDir, 0o755); // the unprivileged service user must reach its own subfolder
  }
  /** @type {Record<string,string>} */
  const env = {};
  /** @type {string[]} */
  const startedNow = [];
  /** @type {string[]} */
  const reused = [];
  /** @type {Record<string, number>} */
  const timings = {};
  /** @type {Record<string, Error>} */
  const failures = {};
  writeState(stateFile, state);

  // Maven fetch happens once, before the JVM services start in parallel.
  if (names.some((n) => (n === 'kafka' || n === 'elasticsearch') && !process.env[OVERRIDES[n]])) {
    ensureMavenArtifacts();
  }

  await Promise.all(
    names.map(async (name) => {
      const override = OVERRIDES[name];
      if (process.env[override]) {
        log(`${name}: using ${override} from the environment (not starting one)`);
        if (name === 'postgres') {
          for (const k of ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE']) if (process.env[k]) env[k] = process.env[k] ?? '';
        } else env[override] = process.env[override] ?? '';
        return;
      }
      const previous = state.services[name];
      if (await alive(name, previous)) {
        log(`${name}: reusing the running instance (pid ${previous.pid})`);
        Object.assign(env, previous.endpoint);
        reused.push(name);
        return;
      }
      if (previous) await SERVICES[name].stop(previous).catch(() => undefined);
      const t0 = Date.now();
      try {
        const svc = await SERVICES[name].start(state.workDir, { persistent, ports: persistent ? (state.ports[name] ?? previous?.ports ?? {}) : {} });
        timings[name] = Date.now() - t0;
        log(`${name}: ready in ${(timings[name] / 1000).toFixed(1)} s (pid ${svc.pid})`);
        state.services[name] = svc;
        delete state.ports[name];
        startedNow.push(name);
        Object.assign(env, svc.endpoint);
        writeState(stateFile, state);
      } catch (err) {
        failures[name] = err instanceof Error ? err : new Error(String(err));
      }
    }),
  );
  writeState(stateFile, state);
  if (Object.keys(failures).length > 0) {
    // Leave nothing half-started behind (and, in persistent mode, no data lost).
    await down({ only: startedNow, stateDir: opts.stateDir, keepData: persistent });
    throw new Error(
      Object.values(failures)
        .map((e) => e.message)
        .join('\n\n'),
    );
  }
  writeEnvFile(envFile, env);
  /** @type {Record<string, number>} */
  const pids = {};
  for (const name of [...startedNow, ...reused]) pids[name] = state.services[name].pid;
  return { env, startedNow, reused, pids, timings };
}

/**
 * Stops the services `up` started (or only the named ones) and removes their temporary data;
 * with `keepData` (persistent mode) the data and the ports stay for the next `up`.
 * @param {{ only?: string[], stateDir?: string, keepData?: boolean }} [opts]
 */
export async function down(opts = {}) {
  const { envFile, stateFile } = filesOf(opts.stateDir);
  const state = readState(stateFile);
  const names = opts.only ?? Object.keys(state.services ?? {});
  await Promise.all(
    names.map(async (name) => {
      const svc = state.services[name];
      if (!svc) return;
      await SERVICES[name].stop(svc);
      if (opts.keepData) state.ports[name] = svc.ports;
      else fs.rmSync(svc.dir, { recursive: true, force: true });
      delete state.services[name];
      log(`${name}: stopped${opts.keepData ? ` (data kept in ${svc.dir})` : ''}`);
    }),
  );
  if (Object.keys(state.services).length === 0) {
    fs.rmSync(envFile, { force: true });
    if (opts.keepData) writeState(stateFile, state);
    else {
      if (state.workDir) fs.rmSync(state.workDir, { recursive: true, force: true });
      fs.rmSync(stateFile, { force: true });
    }
  } else {
    writeState(stateFile, state);
  }
}

/** @param {{ stateDir?: string }} [opts] */
export async function status(opts = {}) {
  const state = readState(filesOf(opts.stateDir).stateFile);
  /** @type {Record<string, string>} */
  const out = {};
  for (const name of Object.keys(SERVICES)) {
    const svc = state.services[name];
    out[name] = process.env[OVERRIDES[name]] ? 'from environment' : svc ? ((await alive(name, svc)) ? `running (pid ${svc.pid})` : 'dead') : 'not started';
  }
  return out;
}
