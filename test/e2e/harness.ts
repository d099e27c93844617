/**
 * The end-to-end harness, shared by the e2e suite (test/e2e/pipeline.test.ts) and `npm run bench:e2e`
 * (bench/e2e.ts): services of its own, the pipeline as processes, the workload, and the check after
 * recovery.
 *
 * - Services: PostgreSQL, Kafka, Elasticsearch and Azurite started by the orchestrator
 *   (test/services/cli.mjs) in persistent mode, in a state directory of their own: the faults stop
 *   and restart them (same data, same ports), which the services every other test shares must never
 *   see. The orchestrator reads PG_CDC_SERVICES_STATE_DIR at import time, so it runs as a child
 *   process, with no endpoint override in its environment.
 * - Processes: the reader (src/reader/main.ts) and the worker (src/worker/main.ts, the Elasticsearch
 *   sink, the change history and the ADX sink against the Kusto stand-in, inline ingestion), each
 *   under a supervisor that starts it again when it dies (kill -9 included), as a container runtime does.
 * - Truth: row triggers count every committed change per table into `e2e_audit.changes` (in the
 *   same transaction as the change, so a rolled-back change is not counted), a key change counting
 *   two (the reader emits it as a delete and a create). The topic, read back whole, must hold that
 *   many distinct changes; every copy beyond it is a duplicate, which the sinks must absorb.
 * - Check: once every sink has consumed the whole topic, `verifyPipeline` (the checker of
 *   `npm run verify`) compares each store with each table, and the history's entries are counted
 *   against the pivot of the distinct changes.
 */
import { Kafka, logLevel } from 'kafkajs';
import { Client } from '@elastic/elasticsearch';
import { BlobServiceClient } from '@azure/storage-blob';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { loadAdxSchemaConfig } from '../../src/shared/adx/config.js';
import { ElasticsearchSink } from '../../src/shared/elasticsearch/elasticsearchSink.js';
import type { ChangeEvent } from '../../src/shared/events/changeEvent.js';
import { parseJsonLossless } from '../../src/shared/events/exactJson.js';
import { SESSION_OPTIONS, textTypes } from '../../src/shared/events/pgTables.js';
import { historyRows, schemaChangeRow } from '../../src/shared/history/pivot.js';
import { controlMessage } from '../../src/shared/events/controlMessage.js';
import { declaredColumns, DEFAULT_ROUTES, Router, type RoutesConfig, type TableRoute } from '../../src/shared/routing/routes.js';
import { HandedRowsSource } from '../../src/shared/verify/adx.js';
import type { VerifyReport } from '../../src/shared/verify/report.js';
import { verifyPipeline } from '../../src/shared/verify/verify.js';
import { spawnEntryPoint, type ChildRun } from '../helpers/childProcess.js';
import { handedRows, startKustoStandIn, type KustoStandIn } from '../shared/adx/helpers/kustoStandIn.js';

export { handedRows };
import { freePort } from '../services/services.mjs';

const run = promisify(execFile);
const cli = path.resolve('test/services/cli.mjs');
export type ServiceName = 'postgres' | 'kafka' | 'elasticsearch' | 'azurite';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns a value other than undefined; fails naming `what` after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------
// Services of its own

function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

/** Four services in a state directory of their own, in persistent mode: each can be stopped and started again with its data and its ports. */
export class OwnServices {
  private constructor(
    readonly stateDir: string,
    readonly env: Record<string, string>,
  ) {}

  private static childEnv(stateDir: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, PG_CDC_SERVICES_STATE_DIR: stateDir };
    for (const name of ['PGHOST', 'PGPORT', 'PGUSER', 'PGDATABASE', 'KAFKA_BROKERS', 'ELASTICSEARCH_URL', 'AZURE_STORAGE_CONNECTION_STRING']) delete env[name];
    return env;
  }

  static async start(): Promise<OwnServices> {
    const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-cdc-e2e-'));
    // mkdtemp makes it private; the service user (PostgreSQL and Elasticsearch refuse root) must reach the data inside.
    fs.chmodSync(stateDir, 0o755);
    await run(process.execPath, [cli, 'up', '--work-dir', path.join(stateDir, 'data')], { env: OwnServices.childEnv(stateDir) });
    return new OwnServices(stateDir, readEnvFile(path.join(stateDir, '.services.env')));
  }

  /** Stops one service, keeping its data and its ports for `start`. */
  async stop(name: ServiceName): Promise<void> {
    await run(process.execPath, [cli, 'down', '--keep-data', '--only', name], { env: OwnServices.childEnv(this.stateDir) });
  }

  /** Starts a stopped service again on its data; its endpoint must be the one it had (the pipeline's processes keep theirs). */
  async start(name: ServiceName): Promise<void> {
    await run(process.execPath, [cli, 'up', '--work-dir', path.join(this.stateDir, 'data'), '--only', name], { env: OwnServices.childEnv(this.stateDir) });
    const now = readEnvFile(path.join(this.stateDir, '.services.env'));
    for (const [key, value] of Object.entries(now)) {
      if (this.env[key] !== value) throw new Error(`${name} came back with ${key}=${value} instead of ${this.env[key]}: its old port was taken`);
    }
  }

  async down(): Promise<void> {
    await run(process.execPath, [cli, 'down'], { env: OwnServices.childEnv(this.stateDir) }).catch(() => undefined);
    fs.rmSync(this.stateDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Supervised processes

/** A process started again whenever it exits without being asked to (a container runtime's restart policy). */
export class Supervised {
  current: ChildRun | null = null;
  /** Every run's log lines, in order. */
  readonly lines: Record<string, unknown>[] = [];
  starts = 0;
  kills = 0;
  private stopping = false;

  constructor(
    readonly entry: string,
    readonly env: Record<string, string>,
    private readonly restartDelayMs = 500,
  ) {}

  start(): void {
    this.stopping = false;
    const child = spawnEntryPoint(this.entry, this.env);
    this.current = child;
    this.starts++;
    void child.exited.then(async () => {
      this.lines.push(...child.lines);
      if (this.current !== child || this.stopping) return;
      await sleep(this.restartDelayMs);
      if (this.current === child && !this.stopping) this.start();
    });
  }

  /** kill -9: no shutdown, no flush, no commit; the supervisor starts it again. */
  kill9(): void {
    this.kills++;
    this.current?.proc.kill('SIGKILL');
  }

  /** Log lines of the running process so far. */
  liveLines(): Record<string, unknown>[] {
    return [...this.lines, ...(this.current?.lines ?? [])];
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const child = this.current;
    if (!child || child.proc.exitCode !== null || child.proc.signalCode !== null) return;
    child.proc.kill('SIGTERM');
    const timer = setTimeout(() => child.proc.kill('SIGKILL'), 30_000);
    await child.exited;
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------
// Tables, routes and the workload

export const TYPES_TABLE = 'e2e.all_types';
export const PARTED_TABLE = 'e2e.parted';
export const KEYLESS_TABLE = 'e2e.keyless';
/** Every captured table with the key columns the audit compares to see a key change (the keyless table: all of its columns). */
export const TABLES: Record<string, string[]> = {
  'retail.orders_info': ['orderid'],
  'bank.holding': ['holding_id'],
  [TYPES_TABLE]: ['id'],
  [PARTED_TABLE]: ['region', 'id'],
  [KEYLESS_TABLE]: ['a', 'b'],
};

export function e2eRoutes(): RoutesConfig {
  return {
    'retail.orders_info': {
      ...DEFAULT_ROUTES['retail.orders_info'],
      elasticsearch: { ...DEFAULT_ROUTES['retail.orders_info']!.elasticsearch!, index: 'e2e-orders' },
    },
    'bank.holding': { ...DEFAULT_ROUTES['bank.holding'], elasticsearch: { ...DEFAULT_ROUTES['bank.holding']!.elasticsearch!, index: 'e2e-holding' } },
    // Every type of the README's mapping, typed by `source.types` (no explicit mapping).
    [TYPES_TABLE]: {
      keys: ['id'],
      elasticsearch: { index: 'e2e-all-types' },
      adx: { table: 'AllTypes', columns: { id: 'int', n: 'decimal', f8: 'real', t: 'string', jb: 'dynamic', tstz: 'datetime', ia: 'dynamic', big: 'string' } },
    },
    // The 200,000-row transaction goes here: its history would be a million entries, so it has none.
    [PARTED_TABLE]: {
      keys: ['region', 'id'],
      history: { enabled: false },
      elasticsearch: { index: 'e2e-parted' },
      adx: { table: 'Parted', columns: { region: 'string', id: 'long', qty: 'long', note: 'string' } },
    },
    [KEYLESS_TABLE]: {
      keys: ['a', 'b'],
      history: { enabled: false },
      elasticsearch: { index: 'e2e-keyless' },
      adx: { table: 'Keyless', columns: { a: 'int', b: 'string' } },
    },
  };
}

const TYPE_COLUMNS = `b boolean, i2 smallint, i4 integer, i8 bigint, o oid,
    n numeric, n52 numeric(5,2), huge numeric(40,10), f4 real, f8 double precision,
    t text, vc varchar(20), ch char(5), nm name, m money, u uuid,
    j json, jb jsonb, by bytea,
    d date, tm time, tm3 time(3), tmtz timetz, ts timestamp, ts3 timestamp(3), tstz timestamptz, iv interval,
    ia integer[], ta text[], mo e2e.mood, pi e2e.posint, ip inet, rng int4range, pt point,
    big text`;

/** A types row: `i` picks the values (a json of another shape every other row), `big` a value stored out of line (TOAST). */
export function typesRow(id: number, big = `${'x'.repeat(5000)}${id}`): string {
  const json = id % 2 === 0 ? `'{"a": ${id}, "b": [1, 2.50, {"deep": true}]}'` : `'[${id}, "two", null, 12345678901234567890]'`;
  const jsonb = id % 3 === 0 ? `'"just a string"'` : id % 3 === 1 ? `'{"k": "v", "n": {"deep": ${id}}}'` : `'[{"now": "array"}]'`;
  return `(${id}, ${id % 2 === 0}, ${id % 100}, ${id * 10}, ${id % 2 === 0 ? '9223372036854775807' : id * 1000}, ${id},
    '${id}.50', ${(id % 999) / 10}, 12345678901234567890.0123456789, ${id % 3 === 0 ? "'NaN'" : '1.5'}, ${id % 5 === 0 ? "'-Infinity'" : id / 7},
    'text ${id} ✓', 'vc${id}', 'ab', 'name${id}', ${id}.25, '${String(id).padStart(8, '0')}-9c0b-4ef8-bb6d-6bb9bd380a11',
    ${json}, ${jsonb}, '\\x00ff${(id % 256).toString(16).padStart(2, '0')}',
    '2024-05-01', '10:11:12.123456', '10:11:12.123', '10:11:12.5+02', '2024-05-01 10:11:12.123456', '2024-05-01 10:11:12.123', ${id % 4 === 0 ? "'infinity'" : "'2024-05-01 10:11:12.123456+02'"}, '1 year 2 months 3 days 04:05:06.789',
    '{${id},2,NULL}', '{"a b","c ${id}"}', 'happy', ${id}, '192.168.0.${id % 256}/24', '[${id},${id + 10})', '(${id},1.5)',
    '${big}')`;
}

export const SCHEMA_SQL = `
  CREATE SCHEMA retail;
  CREATE TABLE retail.orders_info (orderid SERIAL NOT NULL PRIMARY KEY, custid INTEGER NOT NULL, amount INTEGER NOT NULL, city VARCHAR(255) NOT NULL, purchase_time VARCHAR(20) NOT NULL);
  CREATE SCHEMA bank;
  CREATE TABLE bank.holding (holding_id int, user_id int, holding_stock varchar(8), holding_quantity int, datetime_created timestamp, datetime_updated timestamp, primary key (holding_id));
  ALTER TABLE bank.holding REPLICA IDENTITY FULL;
  CREATE SCHEMA e2e;
  CREATE TYPE e2e.mood AS ENUM ('sad', 'ok', 'happy');
  CREATE DOMAIN e2e.posint AS integer CHECK (VALUE > 0);
  CREATE TABLE ${TYPES_TABLE} (id integer PRIMARY KEY, ${TYPE_COLUMNS});
  ALTER TABLE ${TYPES_TABLE} ALTER COLUMN big SET STORAGE EXTERNAL;
  CREATE TABLE ${PARTED_TABLE} (region text NOT NULL, id bigint NOT NULL, qty bigint, note text, PRIMARY KEY (region, id)) PARTITION BY LIST (region);
  CREATE TABLE e2e.parted_eu PARTITION OF ${PARTED_TABLE} FOR VALUES IN ('eu');
  CREATE TABLE e2e.parted_us PARTITION OF ${PARTED_TABLE} FOR VALUES IN ('us');
  CREATE TABLE e2e.parted_other PARTITION OF ${PARTED_TABLE} DEFAULT;
  CREATE TABLE ${KEYLESS_TABLE} (a int, b text);
  ALTER TABLE ${KEYLESS_TABLE} REPLICA IDENTITY FULL;
  CREATE SCHEMA e2e_audit;
  CREATE UNLOGGED TABLE e2e_audit.changes (tbl text NOT NULL, op text NOT NULL, n int NOT NULL);
  -- A change as the reader emits it: an update that changes the key is a delete and a create.
  CREATE FUNCTION e2e_audit.row_change() RETURNS trigger LANGUAGE plpgsql AS $$
  DECLARE k text; n int := 1;
  BEGIN
    IF TG_OP = 'UPDATE' THEN
      FOREACH k IN ARRAY TG_ARGV[1:] LOOP
        IF to_jsonb(OLD) -> k IS DISTINCT FROM to_jsonb(NEW) -> k THEN n := 2; END IF;
      END LOOP;
    END IF;
    INSERT INTO e2e_audit.changes VALUES (TG_ARGV[0], TG_OP, n);
    RETURN NULL;
  END $$;
  CREATE FUNCTION e2e_audit.truncated() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN INSERT INTO e2e_audit.changes VALUES (TG_ARGV[0], 'TRUNCATE', 1); RETURN NULL; END $$;
  ${Object.entries(TABLES)
    .map(([table, keys]) => {
      const args = [table, ...keys].map((a) => `'${a}'`).join(', ');
      const safe = table.replace('.', '_');
      return `CREATE TRIGGER audit_${safe} AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION e2e_audit.row_change(${args});
      CREATE TRIGGER audit_t_${safe} AFTER TRUNCATE ON ${table} FOR EACH STATEMENT EXECUTE FUNCTION e2e_audit.truncated('${table}');`;
    })
    .join('\n')}
`;

/** Rows the tables start with (read by the reader's snapshot). */
export const SEED_SQL = `
  INSERT INTO retail.orders_info (custid, amount, city, purchase_time)
    SELECT 1000 + i % 50, i * 3, (ARRAY['Oslo','Lima','Pune','Kyiv'])[1 + i % 4], '2024-05-01 10:00:00' FROM generate_series(1, 200) i;
  INSERT INTO bank.holding SELECT i, i % 10, 'VFIAX', i, '2024-05-01 10:00:00', '2024-05-01 10:00:00' FROM generate_series(1, 100) i;
  INSERT INTO ${TYPES_TABLE} VALUES ${[1, 2, 3].map((i) => typesRow(i)).join(',')};
  INSERT INTO ${PARTED_TABLE} SELECT (ARRAY['eu','us','asia'])[1 + i % 3], i, i, 'seed' FROM generate_series(1, 60) i;
  INSERT INTO ${KEYLESS_TABLE} SELECT i % 20, 'k' || (i % 7) FROM generate_series(1, 30) i;
`;

/**
 * One slice of the workload, `round` making its keys its own: inserts, updates (the TOASTed column
 * left unchanged, a json changing shape), deletes, primary-key changes, on every table, in a few
 * transactions (one rolled back: nothing of it may arrive).
 */
export async function workloadSlice(c: pg.Client, round: number, size = 50): Promise<void> {
  const base = 1_000 + round * 10_000;
  await c.query(`INSERT INTO retail.orders_info (custid, amount, city, purchase_time)
    SELECT 2000 + i, i, 'City ' || i, '2024-06-01 12:00:00' FROM generate_series(1, ${size}) i`);
  await c.query(`UPDATE retail.orders_info SET amount = amount + 1, city = 'Moved ${round}' WHERE orderid % 7 = ${round % 7}`);
  await c.query(`DELETE FROM retail.orders_info WHERE orderid IN (SELECT orderid FROM retail.orders_info WHERE orderid % 11 = ${round % 11} LIMIT 3)`);
  // A primary-key change.
  await c.query(
    `UPDATE retail.orders_info SET orderid = orderid + 1000000 WHERE orderid = (SELECT min(orderid) FROM retail.orders_info WHERE orderid < 1000000)`,
  );
  await c.query(`INSERT INTO bank.holding SELECT ${base} + i, i % 10, 'VTSAX', i, now(), now() FROM generate_series(1, ${size}) i`);
  await c.query(`UPDATE bank.holding SET holding_quantity = holding_quantity - 1, datetime_updated = now() WHERE holding_id % 5 = ${round % 5}`);
  await c.query(`DELETE FROM bank.holding WHERE holding_id IN (SELECT holding_id FROM bank.holding WHERE user_id = ${round % 10} LIMIT 2)`);
  await c.query(
    `UPDATE bank.holding SET holding_id = holding_id + 100000000 WHERE holding_id = (SELECT min(holding_id) FROM bank.holding WHERE holding_id < 100000000)`,
  );
  await c.query(`INSERT INTO ${TYPES_TABLE} VALUES ${Array.from({ length: 5 }, (_, i) => typesRow(base + i)).join(',')}`);
  // The TOASTed `big` unchanged; the json changes shape.
  await c.query(`UPDATE ${TYPES_TABLE} SET t = 'round ${round}', jb = '[${round}, {"x": "y"}]', ia = '{${round}}' WHERE id % 3 = ${round % 3}`);
  await c.query(`UPDATE ${TYPES_TABLE} SET id = id + 1000000000 WHERE id = ${base + 4}`);
  await c.query(`DELETE FROM ${TYPES_TABLE} WHERE id = ${base + 3}`);
  await c.query(`INSERT INTO ${PARTED_TABLE} SELECT (ARRAY['eu','us','asia'])[1 + i % 3], ${base} + i, i, 'r${round}' FROM generate_series(1, ${size}) i`);
  // The rounds' own rows (the 200,000-row transaction's, from 10,000,000 on, would make each slice 50,000 updates).
  await c.query(`UPDATE ${PARTED_TABLE} SET qty = qty + 1 WHERE id % 4 = ${round % 4} AND id < 10000000`);
  // A row moving between partitions (a key change across partitions).
  await c.query(`UPDATE ${PARTED_TABLE} SET region = 'us' WHERE region = 'eu' AND id = (SELECT min(id) FROM ${PARTED_TABLE} WHERE region = 'eu')`);
  await c.query(`DELETE FROM ${PARTED_TABLE} WHERE id IN (SELECT id FROM ${PARTED_TABLE} WHERE region = 'asia' LIMIT 2)`);
  await c.query(`INSERT INTO ${KEYLESS_TABLE} SELECT ${round} * 100 + i, 'r' || i FROM generate_series(1, 10) i`);
  await c.query(`UPDATE ${KEYLESS_TABLE} SET b = b || '!' WHERE a = ${round * 100 + 1}`);
  await c.query(`DELETE FROM ${KEYLESS_TABLE} WHERE a = ${round * 100 + 2}`);
  await c.query('BEGIN');
  await c.query(`INSERT INTO retail.orders_info (custid, amount, city, purchase_time) VALUES (1, 1, 'rolled back', '2024-01-01 00:00:00')`);
  await c.query('ROLLBACK');
}

/** Inserts `rows` rows into the partitioned table in one transaction. */
export async function bigTransaction(c: pg.Client, rows: number, first = 10_000_000): Promise<void> {
  await c.query(`INSERT INTO ${PARTED_TABLE} SELECT (ARRAY['eu','us','asia'])[1 + i % 3], ${first} + i, i, 'big' FROM generate_series(1, ${rows}) i`);
}

// ---------------------------------------------------------------------------------------------
// The pipeline

export interface Pipeline {
  services: OwnServices;
  kusto: KustoStandIn;
  reader: Supervised;
  worker: Supervised;
  workerHealthPort: number;
  routes: RoutesConfig;
  topic: string;
  deadLetterContainer: string;
  /** Highest worker RSS seen by `sampleWorker`, bytes. */
  workerPeakRss: number;
  pgEnv: Record<string, string>;
}

export const TOPIC = 'e2e_events';
/** The reader's state schema (`CDC_STATE_SCHEMA`): its signal table is in the publication, never a captured table. */
const READER_STATE_SCHEMA = 'e2e_reader';
export const PARTITIONS = 4;

export function pgSettings(services: OwnServices): pg.ClientConfig {
  return { host: services.env.PGHOST, port: Number(services.env.PGPORT), user: services.env.PGUSER, database: services.env.PGDATABASE };
}

export async function pgConnect(services: OwnServices): Promise<pg.Client> {
  const c = new pg.Client(pgSettings(services));
  await c.connect();
  return c;
}

export function kafkaOf(services: OwnServices): Kafka {
  return new Kafka({ brokers: services.env.KAFKA_BROKERS!.split(','), clientId: 'e2e', logLevel: logLevel.NOTHING, retry: { retries: 8 } });
}

/** Starts everything: services, schema and seed rows, topic, Kusto stand-in, reader and worker under supervision. */
export interface PipelineOptions {
  workerEnv?: Record<string, string>;
  readerEnv?: Record<string, string>;
  /** The worker's entry point (default the TypeScript source; the benchmark runs the build, `dist/src/worker/main.js`). */
  workerEntry?: string;
  /** Tables captured besides `TABLES` (no audit, so not in the check): created by `extraSql`, routed by `extraRoutes`. */
  extraTables?: string[];
  extraSql?: string;
  extraRoutes?: RoutesConfig;
}

export async function startPipeline(options: PipelineOptions = {}): Promise<Pipeline> {
  const services = await OwnServices.start();
  const c = await pgConnect(services);
  try {
    await c.query(SCHEMA_SQL);
    if (options.extraSql) await c.query(options.extraSql);
    await c.query(SEED_SQL);
    // The seed rows are read by the snapshot, not changes: the audit counts from here.
    await c.query('TRUNCATE e2e_audit.changes');
  } finally {
    await c.end();
  }
  const admin = kafkaOf(services).admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: PARTITIONS }], waitForLeaders: true });
  await admin.disconnect();
  const kusto = await startKustoStandIn();
  const routes = { ...e2eRoutes(), ...options.extraRoutes };
  const pgEnv = { PGHOST: services.env.PGHOST!, PGPORT: services.env.PGPORT!, PGUSER: services.env.PGUSER!, PGDATABASE: services.env.PGDATABASE! };
  const reader = new Supervised('src/reader/main.ts', {
    ...pgEnv,
    KAFKA_BROKERS: services.env.KAFKA_BROKERS!,
    CDC_SLOT: 'e2e',
    CDC_PUBLICATION: 'e2e_pub',
    CDC_TOPIC: TOPIC,
    CDC_STATE_SCHEMA: READER_STATE_SCHEMA,
    CDC_TABLES: [...Object.keys(TABLES), ...(options.extraTables ?? [])].join(','),
    CDC_STATUS_INTERVAL_MS: '500',
    AZURE_STORAGE_CONNECTION_STRING: services.env.AZURE_STORAGE_CONNECTION_STRING!,
    DEADLETTER_CONTAINER: 'e2e-claim-check',
    HEALTH_PORT: '0',
    LOG_LEVEL: 'warn',
    ...options.readerEnv,
  });
  const workerHealthPort = await freePort();
  const worker = new Supervised(options.workerEntry ?? 'src/worker/main.ts', {
    KAFKA_BROKERS: services.env.KAFKA_BROKERS!,
    CDC_TOPIC: TOPIC,
    WORKER_SINKS: 'elasticsearchSink,changeHistory,adxSink',
    ELASTICSEARCH_URL: services.env.ELASTICSEARCH_URL!,
    ES_NUMBER_OF_REPLICAS: '0',
    ES_CONTROL_INDEX: 'e2e-control',
    HISTORY_INDEX: 'e2e-history',
    CDC_ROUTES: JSON.stringify(routes),
    AZURE_STORAGE_CONNECTION_STRING: services.env.AZURE_STORAGE_CONNECTION_STRING!,
    SINK_DEADLETTER_CONTAINER: 'e2e-sink-deadletter',
    ADX_CLUSTER_URL: kusto.url,
    ADX_DATABASE: 'cdcdb',
    ADX_AUTH: 'none',
    ADX_INGESTION_MODE: 'inline',
    CDC_RETRY_MIN_INTERVAL_SECONDS: '1',
    CDC_RETRY_MAX_INTERVAL_SECONDS: '2',
    WORKER_MAX_WAIT_MS: '100',
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    HEALTH_PORT: String(workerHealthPort),
    LOG_LEVEL: 'warn',
    ...options.workerEnv,
  });
  reader.start();
  worker.start();
  // Changes made once the slot exists are streamed; before it, they would be read by the snapshot.
  const check = await pgConnect(services);
  try {
    await until(
      'the reader to create its slot',
      async () => ((await check.query(`SELECT 1 FROM pg_replication_slots WHERE slot_name = 'e2e'`)).rows.length > 0 ? true : undefined),
      60_000,
    );
  } finally {
    await check.end();
  }
  return {
    services,
    kusto,
    reader,
    worker,
    workerHealthPort,
    routes,
    topic: TOPIC,
    deadLetterContainer: 'e2e-sink-deadletter',
    workerPeakRss: 0,
    pgEnv,
  };
}

export async function stopPipeline(p: Pipeline | undefined): Promise<void> {
  if (!p) return;
  await p.reader.stop().catch(() => undefined);
  await p.worker.stop().catch(() => undefined);
  await p.kusto.close().catch(() => undefined);
  await p.services.down();
}

export interface SinkMetricsJson {
  state: string;
  records: { ok: number; skipped: number; deadLettered: number; retried: number };
  redelivered: number;
  abandonedBatches: number;
  partitions: Record<string, { committedOffset: number | null; lag: number | null; queued: number; inFlight: unknown }>;
}
export interface WorkerMetricsJson {
  sinks: Record<string, SinkMetricsJson>;
  memory: { rssBytes: number };
}

/** The worker's /metrics (undefined while it is down); records its peak RSS. */
export async function sampleWorker(p: Pipeline): Promise<WorkerMetricsJson | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${p.workerHealthPort}/metrics`, { signal: AbortSignal.timeout(2000) });
    if (res.status !== 200) return undefined;
    const metrics = (await res.json()) as WorkerMetricsJson;
    p.workerPeakRss = Math.max(p.workerPeakRss, metrics.memory.rssBytes);
    return metrics;
  } catch {
    return undefined;
  }
}

/** Committed changes per table (the audit triggers' count). */
export async function committedChanges(c: pg.Client): Promise<Map<string, number>> {
  const { rows } = await c.query<{ tbl: string; n: string }>('SELECT tbl, sum(n)::text AS n FROM e2e_audit.changes GROUP BY tbl');
  return new Map(rows.map((r) => [r.tbl, Number(r.n)]));
}

export interface TopicDigest {
  records: number;
  /** Distinct changes per table (table, op, key, lsn). */
  distinct: Map<string, number>;
  duplicates: number;
  /** History entries the distinct changes pivot into, per table. */
  historyEntries: Map<string, number>;
  /** Records whose value is no change event (poison, as injected). */
  notEvents: number;
}

/** Reads the whole topic (to its current end) and digests it; the events themselves are not kept. */
export async function digestTopic(p: Pipeline): Promise<TopicDigest> {
  const kafka = kafkaOf(p.services);
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(p.topic);
  await admin.disconnect();
  const target = new Map(ends.map((o) => [o.partition, BigInt(o.high)]));
  const router = new Router(p.routes);
  const seen = new Set<string>();
  const digest: TopicDigest = { records: 0, distinct: new Map(), duplicates: 0, historyEntries: new Map(), notEvents: 0 };
  const bump = (m: Map<string, number>, k: string, by = 1) => m.set(k, (m.get(k) ?? 0) + by);
  const blobs = BlobServiceClient.fromConnectionString(p.services.env.AZURE_STORAGE_CONNECTION_STRING!);
  const consumer = kafka.consumer({ groupId: `e2e-digest-${Date.now()}-${Math.random().toString(36).slice(2)}`, maxBytes: 16 * 1024 * 1024 });
  await consumer.connect();
  await consumer.subscribe({ topic: p.topic, fromBeginning: true });
  const done = new Set([...target].filter(([, high]) => high === 0n).map(([partition]) => partition));
  let finish: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  if (done.size === target.size) finish();
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const message of batch.messages) {
        const offset = BigInt(message.offset);
        if (offset >= (target.get(batch.partition) ?? 0n)) continue;
        // The partition's last record, whatever it is (a control event, a poison record, a tombstone).
        if (offset + 1n >= (target.get(batch.partition) ?? 0n)) done.add(batch.partition);
        digest.records++;
        if (message.value === null) continue;
        let event: ChangeEvent;
        try {
          event = parseJsonLossless(message.value.toString('utf8')) as ChangeEvent;
        } catch {
          digest.notEvents++;
          continue;
        }
        // The reader's control events: a schema change is one history row of its own (one per change,
        // whichever partitions its copies are on); an incremental snapshot's start and end are none.
        const control = typeof event === 'object' && event !== null && event.source ? controlMessage(event) : null;
        if (control !== null) {
          const table = `${event.source.schema}.${event.source.table}`;
          const id = `${table}|${control.kind}|${event.source.lsn}`;
          if (control.kind === 'schema_change' && !seen.has(id)) {
            seen.add(id);
            bump(digest.historyEntries, table, schemaChangeRow(event, control, router.route(event.source.schema, event.source.table).history).length);
          }
          continue;
        }
        if (typeof event !== 'object' || event === null || !event.source || !['c', 'u', 'd', 'r', 't'].includes(event.op)) {
          digest.notEvents++;
          continue;
        }
        // A claim-check pointer (an event over the broker's limit): the full event is in its Blob.
        if (event.deadletter) {
          const { container, blob } = event.deadletter;
          event = parseJsonLossless((await blobs.getContainerClient(container).getBlobClient(blob).downloadToBuffer()).toString('utf8')) as ChangeEvent;
        }
        const table = `${event.source.schema}.${event.source.table}`;
        let route: TableRoute;
        try {
          route = router.route(event.source.schema, event.source.table);
        } catch {
          // A change of a table without a route (injected): no sink takes it, the audit does not know it.
          digest.notEvents++;
          continue;
        }
        const id = `${table}|${event.op}|${JSON.stringify(event.key)}|${event.source.lsn}`;
        if (seen.has(id)) digest.duplicates++;
        else {
          seen.add(id);
          // Snapshot reads are not changes of the audit (they were there before the triggers counted).
          if (event.op !== 'r') bump(digest.distinct, table);
          bump(digest.historyEntries, table, historyRows(event, route.history, declaredColumns(route)).length);
        }
      }
      if (done.size === target.size) finish();
    },
  });
  await finished;
  await consumer.disconnect();
  return digest;
}

/** Waits until the reader has published every committed change and every sink has consumed the whole topic. */
export async function waitCaughtUp(p: Pipeline, timeoutMs: number, intervalMs = 500): Promise<void> {
  const c = await until('PostgreSQL', () => pgConnect(p.services), timeoutMs);
  try {
    // The reader: its slot's confirmed position at the server's current WAL end.
    await until(
      'the reader to confirm every committed change',
      async () => {
        const { rows } = await c.query<{ behind: string }>(
          `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::text AS behind FROM pg_replication_slots WHERE slot_name = 'e2e'`,
        );
        // Nothing but the status updates' own WAL (a few hundred bytes) left.
        return rows[0] && Number(rows[0].behind) < 16_384 ? true : undefined;
      },
      timeoutMs,
      intervalMs,
    );
  } finally {
    await c.end();
  }
  const kafka = kafkaOf(p.services);
  await until(
    'every sink to consume the whole topic',
    async () => {
      const metrics = await sampleWorker(p);
      if (!metrics) return undefined;
      const admin = kafka.admin();
      await admin.connect();
      try {
        const ends = new Map((await admin.fetchTopicOffsets(p.topic)).map((o) => [o.partition, Number(o.high)]));
        const behind: string[] = [];
        for (const [name, sink] of Object.entries(metrics.sinks)) {
          for (const [partition, high] of ends) {
            const m = sink.partitions[String(partition)];
            if (high > 0 && (!m || m.committedOffset !== high || m.inFlight !== null))
              behind.push(`${name} partition ${partition} at ${m?.committedOffset ?? 'none'} of ${high}${m?.inFlight ? ', a batch in flight' : ''}`);
          }
          if (sink.records.retried > 0) behind.push(`${name}: ${sink.records.retried} records retried so far, state ${sink.state}`);
        }
        // Thrown, so that a timeout says which sinks are behind and where.
        if (behind.some((b) => b.includes(' of '))) {
          const retries = p.worker
            .liveLines()
            .filter((l) => typeof l.msg === 'string' && l.msg.includes('must be retried'))
            .slice(-3)
            .map((l) => JSON.stringify(l));
          throw new Error([...behind, ...retries.map((m) => `worker: ${m.slice(0, 600)}`)].join('; '));
        }
        return true;
      } finally {
        await admin.disconnect();
      }
    },
    timeoutMs,
    intervalMs,
  );
}

export interface CheckResult {
  report: VerifyReport;
  differences: number;
  committed: Map<string, number>;
  digest: TopicDigest;
  /** Committed changes not on the topic, per table (must be 0). */
  lost: Map<string, number>;
  historyDocuments: Map<string, number>;
  /** Index operations Elasticsearch refused as older or equal versions: duplicates absorbed. */
  esVersionConflicts: number;
}

/** The check after recovery: the stores against the tables (`verifyPipeline`), the topic against the audit, the history against the pivot. */
export async function checkPipeline(p: Pipeline): Promise<CheckResult> {
  const es = new Client({ node: p.services.env.ELASTICSEARCH_URL! });
  const session = new pg.Client({ ...pgSettings(p.services), options: SESSION_OPTIONS, types: textTypes });
  await session.connect();
  const c = await pgConnect(p.services);
  try {
    await es.indices.refresh({ index: 'e2e-*' });
    const router = new Router(p.routes);
    const adxEnv = { ADX_DATABASE: 'cdcdb', ADX_AUTH: 'none', ADX_INGESTION_MODE: 'inline', CDC_ROUTES: JSON.stringify(p.routes) };
    const blob = BlobServiceClient.fromConnectionString(p.services.env.AZURE_STORAGE_CONNECTION_STRING!);
    const report = await verifyPipeline({
      pg: session,
      router,
      publication: 'e2e_pub',
      stateSchema: READER_STATE_SCHEMA,
      elasticsearch: { client: es, sink: new ElasticsearchSink({ client: es, router, templates: { replicas: 0 }, controlIndex: 'e2e-control' }) },
      history: { client: es, index: 'e2e-history' },
      adx: { source: new HandedRowsSource((table) => handedRows(p.kusto, table), 'CdcTruncates'), routes: loadAdxSchemaConfig(adxEnv).routes },
      deadLetters: [blob.getContainerClient(p.deadLetterContainer)],
    });
    const differences = report.differences;
    const committed = await committedChanges(c);
    const digest = await digestTopic(p);
    const lost = new Map([...committed].map(([table, n]) => [table, n - (digest.distinct.get(table) ?? 0)]));
    const history = await es.search({ index: 'e2e-history', size: 0, aggs: { t: { terms: { field: 'SourceTable', size: 100 } } } });
    const buckets = (history.aggregations?.t as { buckets: { key: string; doc_count: number }[] } | undefined)?.buckets ?? [];
    // The pipeline's tables only (a dead letter of an unrouted table replayed once its route exists is not one).
    const historyDocuments = new Map(buckets.filter((b) => Object.hasOwn(p.routes, b.key)).map((b) => [b.key, b.doc_count]));
    const stats = (await es.indices.stats({ index: 'e2e-*', metric: 'indexing' })) as unknown as {
      _all: { primaries: { indexing: { index_failed_due_to_version_conflict?: number } } };
    };
    const esVersionConflicts = stats._all.primaries.indexing.index_failed_due_to_version_conflict ?? 0;
    return { report, differences, committed, digest, lost, historyDocuments, esVersionConflicts };
  } finally {
    await session.end();
    await c.end();
    await es.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Faults and their figures

export interface FaultFigures {
  /** Committed changes made during the run (the audit). */
  written: number;
  /** Distinct changes that reached the topic and every sink. */
  delivered: number;
  /** Committed changes not delivered, over the whole run so far (must be 0). */
  lost: number;
  /** Copies of a change beyond the first on the topic (the reader's replays after a crash), absorbed by the sinks. */
  duplicatesOnTopic: number;
  /** Index operations Elasticsearch refused as not newer (redeliveries and replays absorbed by the external version). */
  duplicatesAbsorbedByElasticsearch: number;
  /** Differences `verifyPipeline` found after recovery (must be 0). */
  differences: number;
  /** Seconds: the fault with its changes, the wait for every sink to catch up, the check. */
  seconds: { fault: number; recovery: number; check: number };
}

const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/** Runs `fault` (which makes changes and breaks something), waits for recovery, checks, and gives the figures of this run alone. */
export async function faultRun(
  p: Pipeline,
  before: CheckResult | undefined,
  fault: () => Promise<void>,
  recoveryMs: number,
): Promise<{ figures: FaultFigures; result: CheckResult }> {
  const t0 = performance.now();
  await fault();
  const t1 = performance.now();
  await waitCaughtUp(p, recoveryMs);
  const t2 = performance.now();
  const result = await checkPipeline(p);
  const seconds = (from: number, to: number) => Math.round((to - from) / 100) / 10;
  const figures: FaultFigures = {
    written: total(result.committed) - (before ? total(before.committed) : 0),
    delivered: total(result.digest.distinct) - (before ? total(before.digest.distinct) : 0),
    lost: total(result.lost),
    duplicatesOnTopic: result.digest.duplicates - (before?.digest.duplicates ?? 0),
    // Elasticsearch's counters restart with it: after a restart, what it counted since.
    duplicatesAbsorbedByElasticsearch:
      result.esVersionConflicts >= (before?.esVersionConflicts ?? 0)
        ? result.esVersionConflicts - (before?.esVersionConflicts ?? 0)
        : result.esVersionConflicts,
    differences: result.differences,
    seconds: { fault: seconds(t0, t1), recovery: seconds(t1, t2), check: seconds(t2, performance.now()) },
  };
  return { figures, result };
}

/** A change of a table no route names: refused by every sink until the route is added (then `dlq:replay` applies it). */
export const UNROUTED_TABLE = 'e2e.late';
export const UNROUTED_ROUTE: TableRoute = {
  keys: ['id'],
  elasticsearch: { index: 'e2e-late' },
  adx: { table: 'Late', columns: { id: 'int', note: 'string' } },
};
/** A change envelope of `schema.table` by hand (the poison records below are not the reader's). */
const handMadeEvent = (op: string, schema: string, table: string, row: Record<string, unknown>, key: Record<string, unknown>, lsn: number) => ({
  op,
  before: null,
  after: row,
  key,
  ts_ms: 0,
  source: { version: 'e2e', connector: 'postgresql', name: 'e2e', ts_ms: 0, snapshot: 'false', db: 'postgres', schema, table, txId: 1, lsn, sequence: null },
});

/** Kafka records no sink can take: each must be dead-lettered by every sink, with its reason. */
export const POISON = [
  { name: 'a change of a table without a route', value: JSON.stringify(handMadeEvent('c', 'e2e', 'late', { id: 1, note: 'routed later' }, { id: 1 }, 16)) },
  { name: 'invalid JSON', value: 'not json {' },
  { name: 'a non-envelope', value: JSON.stringify({ hello: 'world' }) },
  { name: 'an unknown op', value: JSON.stringify(handMadeEvent('x', 'retail', 'orders_info', { orderid: 1 }, { orderid: 1 }, 1)) },
];

export async function injectPoison(p: Pipeline): Promise<void> {
  const producer = kafkaOf(p.services).producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    await producer.send({ topic: p.topic, acks: -1, messages: POISON.map((poison, i) => ({ value: poison.value, partition: i % PARTITIONS })) });
  } finally {
    await producer.disconnect();
  }
}

/** Waits until the worker serves /metrics again and some sink has a batch in flight, then kills it (kill -9). */
export async function killWorkerMidBatch(p: Pipeline, timeoutMs = 60_000): Promise<string> {
  const sink = await until(
    'a worker batch in flight',
    async () => {
      const metrics = await sampleWorker(p);
      if (!metrics) return undefined;
      for (const [name, m] of Object.entries(metrics.sinks)) if (Object.values(m.partitions).some((part) => part.inFlight !== null)) return name;
      return undefined;
    },
    timeoutMs,
    20,
  );
  p.worker.kill9();
  return sink;
}

export { sleep };
