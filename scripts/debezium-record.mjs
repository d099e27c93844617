#!/usr/bin/env node
/**
 * Records the golden Debezium fixtures (test/fixtures/debezium/<variant>.jsonl + meta.json): runs the
 * real Debezium PostgreSQL connector in a Kafka Connect standalone worker against the test PostgreSQL
 * and broker, plays the workload below once per settings variant, and writes the topic's records (key
 * and value exactly as JsonConverter wrote them, in offset order). The reader's golden test
 * (test/reader/debezium.test.ts) replays the same workload in CDC_EVENT_FORMAT=debezium and compares.
 *
 *   npm run debezium:record            # services from .services.env (npm run services:up) or the env
 *
 * Needs Maven (jars from Maven Central, cached in ~/.m2) and a JDK 17+. Not run by CI: the fixtures are
 * committed, and re-recording is a deliberate act (a new Debezium version, a new workload statement).
 * Everything it starts (the worker, the slot, the publication, the topic, the schema) it removes again.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Kafka, logLevel } from 'kafkajs';
import { envFile, freePort, readEnvFile } from '../test/services/services.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const fixtures = path.join(repoRoot, 'test', 'fixtures', 'debezium');
const DEBEZIUM_VERSION = '3.6.1.Final';
const CONNECT_VERSION = '4.3.0';
const home = process.env.PG_CDC_DEBEZIUM_HOME ?? path.join('/var/tmp', `pg-cdc-functions-debezium-${DEBEZIUM_VERSION}-${CONNECT_VERSION}`);

/** Names the golden test rewrites to its own unique ones (it shares the server with other tests). */
const SCHEMA = 'dbz_golden';
const PREFIX = 'golden';
const TOPIC = `${PREFIX}.${SCHEMA}.all_types`;

/**
 * The workload. `setup` runs before the connector starts (so its rows are the snapshot), `stream`
 * afterwards, one statement per transaction. The last statement inserts the sentinel row (id 999):
 * once its record is on the topic, every earlier record is (one partition, in order).
 */
const setup = [
  `DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`,
  `CREATE SCHEMA ${SCHEMA}`,
  `CREATE TYPE ${SCHEMA}.mood AS ENUM ('sad', 'ok', 'happy')`,
  `CREATE DOMAIN ${SCHEMA}.posint AS integer CHECK (VALUE > 0)`,
  `CREATE TABLE ${SCHEMA}.all_types (
    id integer PRIMARY KEY,
    b boolean, i2 smallint, i4 integer, i8 bigint, o oid,
    n numeric, n52 numeric(5,2), huge numeric(40,10), f4 real, f8 double precision,
    t text, vc varchar(20), ch char(5), nm name, m money, u uuid,
    j json, jb jsonb, by bytea,
    d date, tm time, tm3 time(3), tmtz timetz, ts timestamp, ts3 timestamp(3), tstz timestamptz, iv interval,
    ia integer[], ta text[], mo ${SCHEMA}.mood, pi ${SCHEMA}.posint, ip inet,
    big text
  )`,
  // EXTERNAL: stored out of line uncompressed once over ~2 kB, so an update of another column leaves it unchanged TOAST
  `ALTER TABLE ${SCHEMA}.all_types ALTER COLUMN big SET STORAGE EXTERNAL`,
  `INSERT INTO ${SCHEMA}.all_types VALUES
    (1, true, 1, 10, 100, 1000, 1.5, 123.45, 12345678901234567890.0123456789, 1.5, 2.25,
     'text one', 'varchar', 'ab', 'name1', 12.34, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
     '{"a": 1, "b": [1, 2]}', '{"k": "v", "n": {"deep": true}}', '\\x00ff10',
     '2024-05-01', '10:11:12.123456', '10:11:12.123', '10:11:12.5+02', '2024-05-01 10:11:12.123456', '2024-05-01 10:11:12.123', '2024-05-01 10:11:12.123456+02', '1 year 2 months 3 days 04:05:06.789',
     '{1,2,3}', '{"a b","c"}', 'happy', 7, '192.168.0.1/24',
     repeat('x', 5000)),
    (2, false, -1, -10, -100, 0, -0.001, -1.00, 0, -0.5, -1e-10,
     '', 'v', 'abcde', 'name2', -1.5, '00000000-0000-0000-0000-000000000000',
     '[1, "two", null]', '"just a string"', '\\x',
     '1970-01-01', '00:00:00', '23:59:59.999', '00:00:00Z', '1970-01-01 00:00:00', '1969-12-31 23:59:59.999', '1970-01-01 00:00:00Z', '-1 days 00:00:01',
     '{}', '{NULL,"x"}', 'sad', 1, '::1',
     'short'),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, NULL, NULL, NULL,
     NULL)`,
];
const stream = [
  // edge values: NaN and infinities, the int8 limits, numbers JSON doubles cannot hold, infinite dates
  `INSERT INTO ${SCHEMA}.all_types VALUES
    (4, true, 32767, 2147483647, 9223372036854775807, 4294967295, 'NaN', 999.99, 123456789012345678901234567890.1234567890, 'NaN', 'Infinity',
     'ünïcödé "quoted" \\ back', 'x', 'y', 'n', 92233720368547758.07, 'ffffffff-ffff-ffff-ffff-ffffffffffff',
     '{"big": 12345678901234567890123, "dec": 0.1000000000000000055511151231257827}', '[{"a": {"b": [1.5, "s", false]}}, 12345678901234567890]', '\\xdeadbeef',
     'infinity', '24:00:00', '00:00:00.001', '23:59:59.999999-14', 'infinity', '294276-12-31 23:59:59.999', 'infinity', '178000000 years',
     '{{1,2},{3,4}}', '{"{braces}","comma,here"}', 'ok', 2147483647, '10.0.0.1',
     'plain'),
    (5, false, -32768, -2147483648, -9223372036854775808, 0, '-0.0000000000000000000000000000000000001', -999.99, -0.0000000001, '-Infinity', '-Infinity',
     'neg', 'x', 'y', 'n', -92233720368547758.08, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12',
     '12', 'null', '\\x01',
     '-infinity', '00:00:00.000001', '12:00:00', '12:00:00+05:30', '-infinity', '0001-01-01 00:00:00', '-infinity', '-178000000 years',
     '{NULL}', '{}', 'sad', 5, '2001:db8::/32',
     'plain')`,
  // unchanged TOAST: big stays out of line and is not sent
  `UPDATE ${SCHEMA}.all_types SET i4 = i4 + 1, jb = '{"k": "changed", "list": []}' WHERE id = 1`,
  // changed TOAST
  `UPDATE ${SCHEMA}.all_types SET big = repeat('y', 6000) WHERE id = 1`,
  // a primary-key change
  `UPDATE ${SCHEMA}.all_types SET id = 20 WHERE id = 2`,
  `DELETE FROM ${SCHEMA}.all_types WHERE id = 5`,
  `DELETE FROM ${SCHEMA}.all_types WHERE id = 1`,
  // a column added mid-stream
  `ALTER TABLE ${SCHEMA}.all_types ADD COLUMN added text`,
  `INSERT INTO ${SCHEMA}.all_types (id, added, t) VALUES (6, 'new column', 'after alter')`,
  `UPDATE ${SCHEMA}.all_types SET added = 'set later' WHERE id = 3`,
  `TRUNCATE ${SCHEMA}.all_types`,
  `INSERT INTO ${SCHEMA}.all_types (id, t) VALUES (999, 'sentinel')`,
];

/** Connector settings shared by every variant (the names the reader's settings follow). */
const common = {
  'connector.class': 'io.debezium.connector.postgresql.PostgresConnector',
  'plugin.name': 'pgoutput',
  'topic.prefix': PREFIX,
  'table.include.list': `${SCHEMA}.all_types`,
  'publication.autocreate.mode': 'filtered',
  'snapshot.mode': 'initial',
};

/** Settings variants; `schemas` is the JsonConverter's `schemas.enable` for key and value. */
const variants = [
  { name: 'defaults', schemas: false, settings: {} },
  { name: 'defaults.schemas', schemas: true, settings: {} },
  {
    name: 'string',
    schemas: false,
    settings: {
      'decimal.handling.mode': 'string',
      'time.precision.mode': 'isostring',
      'interval.handling.mode': 'string',
      'binary.handling.mode': 'base64',
      'skipped.operations': 'none',
    },
  },
  {
    name: 'string.schemas',
    schemas: true,
    settings: {
      'decimal.handling.mode': 'string',
      'time.precision.mode': 'isostring',
      'interval.handling.mode': 'string',
      'binary.handling.mode': 'base64',
      'skipped.operations': 'none',
    },
  },
];

const log = (msg) => process.stderr.write(`[debezium-record] ${msg}\n`);

function services() {
  const file = fs.existsSync(envFile) ? readEnvFile(envFile) : {};
  const get = (k, d) => process.env[k] ?? file[k] ?? d;
  const brokers = get('KAFKA_BROKERS');
  if (!brokers) throw new Error(`KAFKA_BROKERS is not set and ${envFile} does not exist: run npm run services:up first`);
  return {
    pg: {
      host: get('PGHOST', 'localhost'),
      port: Number(get('PGPORT', '5432')),
      user: get('PGUSER', 'postgres'),
      password: get('PGPASSWORD', ''),
      database: get('PGDATABASE', 'postgres'),
    },
    brokers: brokers.split(',').map((b) => b.trim()),
  };
}

function fetchJars() {
  const marker = path.join(home, '.complete');
  if (fs.existsSync(marker)) return;
  log(`fetching Debezium ${DEBEZIUM_VERSION} and Kafka Connect ${CONNECT_VERSION} with Maven into ${home}`);
  for (const pom of [path.join(here, 'debezium', 'pom.xml'), path.join(here, 'debezium', 'plugin', 'pom.xml')]) {
    const args = [
      '-B',
      '-q',
      '-f',
      pom,
      `-Ddebezium.home=${home}`,
      `-Ddebezium.version=${DEBEZIUM_VERSION}`,
      `-Dconnect.version=${CONNECT_VERSION}`,
      'package',
    ];
    const r = spawnSync('mvn', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.status !== 0)
      throw new Error(`mvn failed (exit ${r.status ?? r.error?.message}):\n${`${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-25).join('\n')}`);
  }
  fs.writeFileSync(marker, new Date().toISOString());
}

const properties = (o) =>
  Object.entries(o)
    .map(([k, v]) => `${k}=${String(v).replace(/\\/g, '\\\\')}`)
    .join('\n') + '\n';

/** Runs one variant and returns its records' JSON lines. */
async function record(variant, env, kafka) {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'debezium-record-'));
  const slot = `dbz_golden_${variant.name.replace(/\W/g, '_')}`;
  const db = new pg.Client(env.pg);
  await db.connect();
  const admin = kafka.admin();
  await admin.connect();
  const dropTopic = async () => {
    const topics = await admin.listTopics();
    if (topics.includes(TOPIC)) await admin.deleteTopics({ topics: [TOPIC], timeout: 30_000 });
    for (let i = 0; i < 100 && (await admin.listTopics()).includes(TOPIC); i++) await new Promise((r) => setTimeout(r, 200));
  };
  const dropSlot = async () => {
    for (let i = 0; i < 100; i++) {
      const r = await db.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
      if (r.rows.length === 0) break;
      if (!r.rows[0].active) {
        await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
        break;
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    await db.query(`DROP PUBLICATION IF EXISTS ${slot}`);
  };
  let worker = null;
  let consumer = null;
  try {
    await dropSlot();
    await dropTopic();
    for (const sql of setup) await db.query(sql);

    const connector = {
      name: slot,
      ...common,
      'database.hostname': env.pg.host,
      'database.port': env.pg.port,
      'database.user': env.pg.user,
      'database.password': env.pg.password,
      'database.dbname': env.pg.database,
      'slot.name': slot,
      'publication.name': slot,
      ...variant.settings,
    };
    const workerProps = {
      'bootstrap.servers': env.brokers.join(','),
      'key.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
      'key.converter.schemas.enable': variant.schemas,
      'value.converter.schemas.enable': variant.schemas,
      'offset.storage.file.filename': path.join(work, 'offsets.dat'),
      'offset.flush.interval.ms': 1000,
      'plugin.path': path.join(home, 'plugins'),
      listeners: `http://127.0.0.1:${await freePort()}`,
    };
    fs.writeFileSync(path.join(work, 'worker.properties'), properties(workerProps));
    fs.writeFileSync(path.join(work, 'connector.properties'), properties(connector));
    fs.writeFileSync(
      path.join(work, 'log4j2.properties'),
      properties({
        'rootLogger.level': 'INFO',
        'rootLogger.appenderRef.file.ref': 'file',
        'appender.file.type': 'File',
        'appender.file.name': 'file',
        'appender.file.fileName': path.join(work, 'connect.log'),
        'appender.file.layout.type': 'PatternLayout',
        'appender.file.layout.pattern': '%d %p %c{1} - %m%n',
      }),
    );
    const java = process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java';
    worker = spawn(
      java,
      [
        `-Dlog4j2.configurationFile=${path.join(work, 'log4j2.properties')}`,
        '-Xmx512m',
        '-cp',
        `${path.join(home, 'connect')}/*`,
        'org.apache.kafka.connect.cli.ConnectStandalone',
        path.join(work, 'worker.properties'),
        path.join(work, 'connector.properties'),
      ],
      { stdio: ['ignore', 'ignore', 'inherit'], detached: false },
    );
    const exited = new Promise((resolve) => worker.on('exit', (code) => resolve(code)));

    const records = [];
    consumer = kafka.consumer({ groupId: `${slot}_${Date.now()}` });
    await consumer.connect();
    // the topic may not exist yet: poll until Connect created it (auto-creation by its producer)
    await waitFor('the topic', async () => (await admin.listTopics()).includes(TOPIC), exited, work);
    await consumer.subscribe({ topics: [TOPIC], fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        records.push({ partition, offset: Number(message.offset), key: message.key?.toString('utf8') ?? null, value: message.value?.toString('utf8') ?? null });
      },
    });
    const isSnapshotLast = (r) => r.value !== null && /"snapshot":"last"/.test(r.value);
    await waitFor('the snapshot', () => records.some(isSnapshotLast), exited, work);
    log(`${variant.name}: snapshot done (${records.length} records), streaming the workload`);
    for (const sql of stream) await db.query(sql);
    const isSentinel = (r) => r.key !== null && /"id":999\b/.test(r.key) && r.value !== null;
    await waitFor('the sentinel row', () => records.some(isSentinel), exited, work);
    records.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
    // key and value spliced in as Connect wrote them: parsing would round the int8 and json numbers
    return records.map(
      (r) => `{"topic":${JSON.stringify(TOPIC)},"partition":${r.partition},"offset":${r.offset},"key":${r.key ?? 'null'},"value":${r.value ?? 'null'}}`,
    );
  } finally {
    await consumer?.disconnect().catch(() => undefined);
    if (worker && worker.exitCode === null) {
      worker.kill('SIGTERM');
      await new Promise((resolve) => (worker.exitCode === null ? worker.on('exit', resolve) : resolve()));
    }
    await dropSlot().catch((e) => log(`dropping slot ${slot}: ${e.message}`));
    await dropTopic().catch((e) => log(`dropping topic: ${e.message}`));
    await admin.disconnect().catch(() => undefined);
    await db.query(`DROP SCHEMA IF EXISTS ${SCHEMA} CASCADE`).catch(() => undefined);
    await db.end();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

async function waitFor(what, check, exited, work, timeoutMs = 180_000) {
  let dead = false;
  void exited.then(() => (dead = true));
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (dead || Date.now() > deadline) {
      const logFile = path.join(work, 'connect.log');
      const tail = fs.existsSync(logFile)
        ? fs
            .readFileSync(logFile, 'utf8')
            .split('\n')
            .filter((l) => / (ERROR|WARN) /.test(l))
            .slice(-30)
            .join('\n')
        : '';
      throw new Error(`${dead ? 'the Connect worker exited' : 'timed out'} waiting for ${what}\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function main() {
  const started = Date.now();
  const env = services();
  fetchJars();
  const kafka = new Kafka({ clientId: 'debezium-record', brokers: env.brokers, logLevel: logLevel.NOTHING });
  fs.mkdirSync(fixtures, { recursive: true });
  const only = process.argv.slice(2);
  for (const variant of variants) {
    if (only.length > 0 && !only.includes(variant.name)) continue;
    const t0 = Date.now();
    const lines = await record(variant, env, kafka);
    fs.writeFileSync(path.join(fixtures, `${variant.name}.jsonl`), lines.join('\n') + '\n');
    log(`${variant.name}: ${lines.length} records in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
  const meta = {
    debezium: DEBEZIUM_VERSION,
    connect: CONNECT_VERSION,
    converter: 'org.apache.kafka.connect.json.JsonConverter',
    postgres: (await query(env, 'SHOW server_version'))[0]?.server_version ?? null,
    topic: TOPIC,
    schema: SCHEMA,
    prefix: PREFIX,
    connector: common,
    variants: variants.map((v) => ({ name: v.name, file: `${v.name}.jsonl`, schemasEnable: v.schemas, settings: v.settings })),
    workload: { setup, stream },
  };
  fs.writeFileSync(path.join(fixtures, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
  log(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

async function query(env, sql) {
  const c = new pg.Client(env.pg);
  await c.connect();
  try {
    return (await c.query(sql)).rows;
  } finally {
    await c.end();
  }
}

main().catch((err) => {
  log(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exitCode = 1;
});
