/**
 * `npm start`: the whole pipeline on one machine, no Docker. Starts (or reuses) PostgreSQL, Kafka,
 * Elasticsearch and Azurite through the test-service orchestrator in persistent mode, applies the
 * demo schema and the Elasticsearch templates, runs the reader and the worker as child processes and
 * the order generator in process, prints a status line every few seconds, and on Ctrl-C / SIGTERM
 * stops all of it in order. Everything it keeps is in one folder (START_STATE_DIR, default .pg-cdc).
 * Exit codes: 0 stopped on a signal, 1 failed (a service, the schema, a child that cannot be kept
 * running), 2 bad flag or setting.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { down, portsFor, serviceUserCanReach, up } from '../../test/services/services.mjs';
import { getOptionalString } from '../shared/core/env.js';
import type { Logger } from '../shared/core/logger.js';
import { describeError } from '../shared/core/errors.js';
import { connectPgClient, pgSettingsFromEnv } from '../shared/core/postgres.js';
import { redact } from '../shared/core/redact.js';
import { elasticsearchClientFromEnv } from '../shared/elasticsearch/client.js';
import { setupElasticsearch, setupOptionsFromEnv } from '../shared/elasticsearch/setup.js';
import { generatorConfigFromEnv } from '../shared/generator/config.js';
import { runGenerator, type GeneratorRun } from '../shared/generator/generator.js';
import { startStatusServer, statusFromEnv, type EnvStatus } from '../shared/status/server.js';
import { statusLine } from '../shared/status/summary.js';
import type { Server } from 'node:http';
import { loadStartConfig, repoRoot, USAGE, type StartConfig } from './config.js';
import { Supervised } from './supervisor.js';

/** The one schema source of the demo (also loaded by the docker compose PostgreSQL). */
const SCHEMA_FILE = path.join(repoRoot, 'deploy', 'local', 'postgres-init', '001-demo-schema.sql');

/** Settings the children get unless the environment sets them: the demo tables, and a single local node. */
const DEMO_DEFAULTS: Record<string, string> = {
  CDC_TABLES: 'retail.orders_info,bank.holding',
  // One local Elasticsearch node cannot hold replicas (the indices would stay yellow).
  ES_NUMBER_OF_REPLICAS: '0',
};

/** SIGTERM grace of a child: the worker's default shutdown timeout (15 s) plus leaving its groups (5 s). */
const CHILD_GRACE_MS = 25_000;
const READY_TIMEOUT_MS = 180_000;

/** What `start.json` in the state folder holds: every process this run started, for a later run and for the tests. */
interface PidFile {
  launcher: number;
  startedAt: string;
  stoppedAt?: string;
  /** Services in the state folder this run started or reused (none for those given by the environment). */
  services: Record<string, number>;
  /** Every reader and worker process started, restarts included. */
  children: Record<string, number[]>;
}

const SECRET_NAME = /PASSWORD|SECRET|CONNECTION_STRING|API_KEY|AzureWebJobsStorage/i;
const secrets = Object.entries(process.env)
  .filter(([k, v]) => SECRET_NAME.test(k) && v !== undefined && v.length >= 4)
  .map(([, v]) => v!);
const say = (line: string) => process.stdout.write(`${redact(line, secrets)}\n`);

function readPidFile(file: string): PidFile | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as PidFile;
  } catch {
    return undefined;
  }
}

/** The process's command line, or undefined when it is gone (Linux /proc). */
function commandLine(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return undefined;
  }
}

/** Whether the process is a child of an `npm start` on `stateDir`: its entry point, and START_STATE_DIR in its environment. */
function isOurChild(pid: number, entry: string, stateDir: string): boolean {
  try {
    return commandLine(pid)?.includes(entry) === true && fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`START_STATE_DIR=${stateDir}`);
  } catch {
    return false;
  }
}

/**
 * A previous launcher killed hard (SIGKILL, a closed terminal) leaves its children running, and the old
 * reader would hold the slot: stop the ones still running, recognised by pid, entry point and the
 * START_STATE_DIR the launcher gave them (a pid alone may have been reused by then).
 */
async function stopLeftovers(previous: PidFile, stateDir: string): Promise<void> {
  const entries: Record<string, string> = { reader: 'src/reader/main.ts', worker: 'src/worker/main.ts' };
  for (const [name, pids] of Object.entries(previous.children)) {
    for (const pid of pids) {
      const entry = entries[name];
      if (entry === undefined || !isOurChild(pid, entry, stateDir)) continue;
      say(`${name} pid ${pid} of an earlier npm start still runs: stopping it`);
      process.kill(pid, 'SIGTERM');
      const deadline = Date.now() + CHILD_GRACE_MS;
      while (commandLine(pid) !== undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      if (commandLine(pid) !== undefined) process.kill(pid, 'SIGKILL');
    }
  }
}

async function applySchema(env: Record<string, string | undefined>): Promise<void> {
  const settings = pgSettingsFromEnv(env);
  const client = await connectPgClient(settings, 'pg-cdc-start');
  try {
    await client.query(fs.readFileSync(SCHEMA_FILE, 'utf8'));
  } catch (err) {
    throw new Error(
      `the demo schema (${path.relative(repoRoot, SCHEMA_FILE)}) failed on ${settings.host}:${settings.port}/${settings.database} as ${settings.user}: ` +
        `${describeError(err)}. Apply it once as a superuser (psql -f ${path.relative(repoRoot, SCHEMA_FILE)}) or set PGUSER to one.`,
      { cause: err },
    );
  } finally {
    await client.end();
  }
}

async function setupIndices(env: Record<string, string | undefined>): Promise<string> {
  const client = elasticsearchClientFromEnv(env);
  try {
    const result = await setupElasticsearch(client, setupOptionsFromEnv(env));
    return `created ${result.created.join(', ') || '-'}; already there ${result.existing.join(', ') || '-'}`;
  } finally {
    await client.close();
  }
}

/** Polls `url` until it answers 200; false when `stop` aborts first or `timeoutMs` passes. */
async function waitReady(url: string, stop: AbortSignal, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!stop.aborted && Date.now() < deadline) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(2000) })).status === 200) return true;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  return false;
}

/**
 * As root, PostgreSQL and Elasticsearch run as an unprivileged user, which cannot reach a state folder
 * under a private parent (a clone in /root, a mktemp directory). Their data then lives under /var/tmp,
 * one folder per state folder, linked from `<state>/services` so the state stays in one place to look
 * at, and `--fresh` removes both.
 */
function servicesHome(stateDir: string): string {
  const dir = path.join('/var/tmp', `pg-cdc-start-${createHash('sha256').update(stateDir).digest('hex').slice(0, 12)}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  fs.symlinkSync(dir, path.join(stateDir, 'services'));
  say(`services: ${stateDir} is not reachable by the services' user (a private parent folder), so their data is in ${dir} (linked as services/)`);
  return dir;
}

/** The generator's warnings (a failed batch, reconnecting) as console lines. */
const sayLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: (msg, fields) => say(`${msg}${fields === undefined ? '' : ` ${JSON.stringify(fields)}`}`),
  error: (msg, fields) => say(`${msg}${fields === undefined ? '' : ` ${JSON.stringify(fields)}`}`),
  child: () => sayLogger,
};

/** The status server on `port`, or on a free one when `port` is taken (said so). */
async function listenStatus(status: EnvStatus, port: number): Promise<Server> {
  try {
    return await startStatusServer(port, status.monitor);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || port === 0) throw err;
    say(`status: port ${port} (START_STATUS_PORT) is taken; using a free one`);
    return startStatusServer(0, status.monitor);
  }
}

async function run(config: StartConfig): Promise<number> {
  const t0 = Date.now();
  const elapsed = () => `${((Date.now() - t0) / 1000).toFixed(1)} s`;
  const { stateDir } = config;
  const servicesLink = path.join(stateDir, 'services');
  // The services' data, normally inside the state folder; see servicesHome.
  let servicesDir = fs.existsSync(servicesLink) ? fs.realpathSync(servicesLink) : servicesLink;
  const logsDir = path.join(stateDir, 'logs');
  const pidPath = path.join(stateDir, 'start.json');

  const previous = readPidFile(pidPath);
  if (previous && previous.stoppedAt === undefined && previous.launcher !== process.pid && commandLine(previous.launcher)?.includes('src/start/main.ts')) {
    say(`another npm start (pid ${previous.launcher}) uses ${stateDir}: stop it first, or give this one its own folder with START_STATE_DIR`);
    return 1;
  }
  if (previous) await stopLeftovers(previous, stateDir);
  if (config.fresh && fs.existsSync(stateDir)) {
    say(`--fresh: removing ${stateDir}`);
    // Services an earlier run left running hold files in it: stop them first (this removes their data).
    await down({ stateDir: servicesDir });
    if (servicesDir !== servicesLink) fs.rmSync(servicesDir, { recursive: true, force: true });
    fs.rmSync(stateDir, { recursive: true, force: true });
    servicesDir = servicesLink;
  }
  fs.mkdirSync(logsDir, { recursive: true });
  // The service user (PostgreSQL and Elasticsearch refuse root) must reach its data inside.
  fs.chmodSync(stateDir, 0o755);
  const startsServices = ['PGHOST', 'KAFKA_BROKERS', 'ELASTICSEARCH_URL', 'AZURE_STORAGE_CONNECTION_STRING'].some((k) => !process.env[k]);
  if (startsServices && !fs.existsSync(servicesLink) && !serviceUserCanReach(stateDir)) servicesDir = servicesHome(stateDir);
  const pids: PidFile = { launcher: process.pid, startedAt: new Date().toISOString(), services: {}, children: {} };
  const savePids = () => fs.writeFileSync(pidPath, JSON.stringify(pids, null, 2) + '\n');
  savePids();

  const stop = new AbortController();
  let failure: string | undefined;
  const requestStop = (why: string, fatal: boolean) => {
    if (stop.signal.aborted) return;
    if (fatal) failure = why;
    say(fatal ? `stopping: ${why}` : `${why}: stopping (generator, then reader and worker, then the services npm start runs)`);
    stop.abort();
  };
  process.on('SIGINT', () => requestStop('SIGINT', false));
  process.on('SIGTERM', () => requestStop('SIGTERM', false));

  let orders: GeneratorRun | undefined;
  let status: EnvStatus | undefined;
  let statusServer: Server | undefined;
  const children: Supervised[] = [];
  let statusTimer: NodeJS.Timeout | undefined;
  let ourServices = false;
  /** Starts everything and waits for the stop; returns early when a stop comes during start-up. */
  const startAndWait = async (): Promise<void> => {
    say(`npm start: state in ${stateDir}${config.fresh ? ' (fresh)' : ''}`);
    const services = await up({ stateDir: servicesDir, workDir: servicesDir });
    ourServices = Object.keys(services.pids).length > 0;
    pids.services = services.pids;
    savePids();
    const origin = (name: 'postgres' | 'kafka' | 'elasticsearch' | 'azurite') =>
      services.startedNow.includes(name) ? 'started' : services.reused.includes(name) ? 'reused' : 'from the environment';
    say(
      `services ready (${elapsed()}): postgres ${services.env.PGHOST}:${services.env.PGPORT} (${origin('postgres')}), kafka ${services.env.KAFKA_BROKERS} (${origin('kafka')}), ` +
        `elasticsearch ${services.env.ELASTICSEARCH_URL} (${origin('elasticsearch')}), azurite (${origin('azurite')})`,
    );
    if (stop.signal.aborted) return;

    const childEnv: Record<string, string | undefined> = { ...DEMO_DEFAULTS, ...process.env, ...services.env };
    // An endpoint given in the environment keeps its own PGPASSWORD and friends: only what up() returned is overridden.
    await applySchema(childEnv);
    say(`schema: ${path.relative(repoRoot, SCHEMA_FILE)} applied`);
    say(`elasticsearch: templates and indices: ${await setupIndices(childEnv)}`);
    say(
      getOptionalString(childEnv, 'ADX_CLUSTER_URL') === undefined
        ? 'ADX: off (set ADX_CLUSTER_URL and ADX_DATABASE, and run npm run adx:setup once, to add the ADX sink; docs/adx.md)'
        : `ADX: on (${getOptionalString(childEnv, 'ADX_CLUSTER_URL')}); the worker runs adxSink`,
    );
    if (stop.signal.aborted) return;

    const [readerPort = 0, workerPort = 0] = await portsFor(undefined, undefined);
    const events = {
      say,
      started: (name: string, pid: number) => {
        (pids.children[name] ??= []).push(pid);
        savePids();
      },
      fatal: (name: string, reason: string) => requestStop(reason, true),
    };
    const child = (name: string, entry: string, port: number, nodeFlags: string[] = []) =>
      new Supervised(
        {
          name,
          entry,
          nodeFlags,
          cwd: repoRoot,
          env: { ...childEnv, HEALTH_PORT: String(port), START_STATE_DIR: stateDir },
          logFile: path.join(logsDir, `${name}.log`),
          secrets,
        },
        events,
      );
    // The reader's heap bounds of `npm run reader`.
    const reader = child('reader', 'src/reader/main.ts', readerPort, ['--max-old-space-size=128', '--max-semi-space-size=8']);
    const worker = child('worker', 'src/worker/main.ts', workerPort);
    children.push(reader, worker);
    reader.start();
    // The worker needs the topic, which the reader creates on start.
    if (!(await waitReady(`http://127.0.0.1:${readerPort}/readyz`, stop.signal, READY_TIMEOUT_MS))) {
      if (!stop.signal.aborted) requestStop(`the reader was not ready after ${READY_TIMEOUT_MS / 1000} s (see ${path.join(logsDir, 'reader.log')})`, true);
      return;
    }
    say(`reader ready (${elapsed()}, pid ${reader.pid}, log ${path.join(logsDir, 'reader.log')})`);
    worker.start();
    if (!(await waitReady(`http://127.0.0.1:${workerPort}/readyz`, stop.signal, READY_TIMEOUT_MS))) {
      if (!stop.signal.aborted) requestStop(`the worker was not ready after ${READY_TIMEOUT_MS / 1000} s (see ${path.join(logsDir, 'worker.log')})`, true);
      return;
    }
    say(`worker ready (${elapsed()}, pid ${worker.pid}, log ${path.join(logsDir, 'worker.log')})`);

    if (config.ordersPerSec > 0) {
      const generator = generatorConfigFromEnv(childEnv);
      orders = runGenerator({ ...generator, rate: config.ordersPerSec, logger: sayLogger }, { signal: stop.signal });
      // A generator that cannot start (its table missing, PostgreSQL refusing) stops everything, named.
      orders.done.catch((err: unknown) => requestStop(`the generator cannot run: ${describeError(err)}`, true));
      say(
        `generator: ${config.ordersPerSec} changes per second into ${generator.table} (${generator.workload}` +
          `${generator.workload === 'orders' ? `, mix ${generator.mix.insert}:${generator.mix.update}:${generator.mix.delete}` : ''}; --rate N to change)`,
      );
    } else say('generator: off (--rate 0)');

    // The status model of src/shared/status over what this run started: the slot, the reader's metrics,
    // the topic against the worker's groups, the indices, the dead letters.
    status = statusFromEnv({ ...childEnv, READER_METRICS_URL: `http://127.0.0.1:${readerPort}/metrics` });
    status.monitor.start();
    statusServer = await listenStatus(status, config.statusPort);
    const address = statusServer.address();
    const statusUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : config.statusPort}`;
    say(`status: ${statusUrl}/ (page), ${statusUrl}/status (JSON); Ctrl-C stops everything`);
    const monitor = status.monitor;
    const tick = async () => {
      const current = await monitor.current().catch(() => undefined);
      if (current !== undefined && !stop.signal.aborted) say(statusLine(current, { ordersWritten: orders?.counters.inserts }));
    };
    statusTimer = setInterval(() => void tick(), config.statusIntervalMs);
    await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
  };
  try {
    await startAndWait();
  } catch (err) {
    failure = describeError(err);
    say(`npm start failed: ${failure}`);
  } finally {
    stop.abort();
    clearInterval(statusTimer);
    const summary = await orders?.done.catch(() => undefined);
    if (summary)
      say(
        `generator: stopped after ${summary.changes} changes (inserts ${summary.inserts}, updates ${summary.updates}, deletes ${summary.deletes}, errors ${summary.errors})`,
      );
    await new Promise<void>((resolve) => (statusServer ? statusServer.close(() => resolve()) : resolve()));
    await status?.close().catch(() => undefined);
    await Promise.all(children.map((c) => c.stop(CHILD_GRACE_MS)));
    if (children.length > 0) say('reader and worker stopped');
    if (ourServices) await down({ stateDir: servicesDir, keepData: true }).catch((err: unknown) => say(`stopping the services: ${describeError(err)}`));
    pids.stoppedAt = new Date().toISOString();
    savePids();
    say(`stopped (${elapsed()})${failure === undefined ? '' : `: ${failure}`}; data kept in ${stateDir} (npm start -- --fresh starts clean)`);
  }
  return failure === undefined ? 0 : 1;
}

async function main(): Promise<number> {
  let config: StartConfig;
  try {
    config = loadStartConfig(process.argv.slice(2));
  } catch (err) {
    say(`npm start: ${describeError(err)}\n${USAGE}`);
    return 2;
  }
  if (config.help) {
    say(USAGE);
    return 0;
  }
  return run(config);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(redact(`npm start crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`, secrets) + '\n');
    process.exit(1);
  },
);
