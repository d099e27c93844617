/**
 * `npm start` as a user runs it: a child process (`npm start`), stopped with Ctrl-C (SIGINT to its
 * process group, as a terminal sends it). To keep the machine sane it is given the running test
 * services through the environment (so it starts none) and names of its own: a database, slot,
 * publication, topic, consumer groups, indices, containers and state folder.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { Admin } from '@platformatic/kafka';
import { spawnNpm, type ChildRun } from '../helpers/childProcess.js';
import { eventually, serviceEnv, uniqueName } from '../helpers/services.js';
import { cleanup, testClient, testRoutes } from '../shared/esTestKit.js';

const services = serviceEnv();
const base = uniqueName('start');
const dash = base.replaceAll('_', '-');
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-cdc-start-'));
const index = `${dash}-orders`;
const indices = [index, `${dash}-holding`, `${dash}-history`, `${dash}-control`];
const env: Record<string, string> = {
  PGHOST: services.pg.host,
  PGPORT: String(services.pg.port),
  PGUSER: services.pg.user,
  PGDATABASE: base,
  KAFKA_BROKERS: services.kafkaBrokers.join(','),
  ELASTICSEARCH_URL: services.elasticsearchUrl,
  AZURE_STORAGE_CONNECTION_STRING: services.azureStorageConnectionString,
  START_STATE_DIR: stateDir,
  START_ORDERS_PER_SEC: '20',
  START_STATUS_INTERVAL_MS: '1000',
  START_STATUS_PORT: '0',
  // Inserts and updates only: a delete would race the set comparisons below with the pipeline.
  ORDERS_GENERATOR_MIX: '80:20:0',
  CDC_SLOT: base,
  CDC_PUBLICATION: base,
  CDC_TOPIC: dash,
  ES_CONSUMER_GROUP: `${dash}-es`,
  HISTORY_CONSUMER_GROUP: `${dash}-history`,
  CDC_ROUTES: JSON.stringify(testRoutes(index, `${dash}-holding`)),
  HISTORY_INDEX: `${dash}-history`,
  ES_CONTROL_INDEX: `${dash}-control`,
  DEADLETTER_CONTAINER: dash.slice(0, 60),
  SINK_DEADLETTER_CONTAINER: `${dash.slice(0, 55)}-sink`,
  WORKER_MAX_WAIT_MS: '200',
};

const admin = () => new pg.Client({ host: services.pg.host, port: services.pg.port, user: services.pg.user, database: services.pg.database });
async function query<R extends pg.QueryResultRow>(sql: string, database = base): Promise<R[]> {
  const client = new pg.Client({ host: services.pg.host, port: services.pg.port, user: services.pg.user, database });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}
const pgOrderIds = async () => (await query<{ orderid: number }>('SELECT orderid FROM retail.orders_info')).map((r) => r.orderid);
const es = testClient();
async function indexedOrderIds(): Promise<Set<number>> {
  const res = await es.search<{ orderid: number }>({ index: `${index}-live`, size: 10_000, _source: ['orderid'] }, { ignore: [404] });
  return new Set((res.hits?.hits ?? []).map((h) => h._source!.orderid));
}

interface PidFile {
  launcher: number;
  services: Record<string, number>;
  children: Record<string, number[]>;
}
const readPids = (): PidFile => JSON.parse(fs.readFileSync(path.join(stateDir, 'start.json'), 'utf8')) as PidFile;
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** Every process whose environment carries this test's state folder: npm, its shell, the launcher and all it started. */
const processesOfThisRun = (): number[] =>
  fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/environ`, 'utf8').split('\0').includes(`START_STATE_DIR=${stateDir}`);
      } catch {
        return false;
      }
    })
    .map(Number);
const output = (run: ChildRun): string => run.lines.map((l) => (typeof l.msg === 'string' ? l.msg : JSON.stringify(l))).join('\n');

/** Ctrl-C, then: exit 0 and not one process of the run left (the launcher and every reader and worker it started). */
async function interruptAndCheck(run: ChildRun & { interrupt(): void }): Promise<void> {
  run.interrupt();
  expect(await run.exited).toBe(0);
  const pids = readPids();
  expect(pids.services).toEqual({}); // every service came from the environment: none started, none stopped
  expect(pids.children.reader?.length).toBeGreaterThan(0);
  expect(pids.children.worker?.length).toBeGreaterThan(0);
  for (const pid of [pids.launcher, ...Object.values(pids.children).flat()]) expect(alive(pid)).toBe(false);
  expect(processesOfThisRun()).toEqual([]);
}

describe('npm start', () => {
  const runs: (ChildRun & { interrupt(): void })[] = [];
  beforeAll(async () => {
    const client = admin();
    await client.connect();
    await client.query(`CREATE DATABASE ${base}`);
    await client.end();
  });
  afterAll(async () => {
    for (const run of runs) if (run.proc.exitCode === null && run.proc.signalCode === null) run.interrupt();
    await Promise.all(runs.map((r) => r.exited));
    await query(`SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${base}'`, services.pg.database).catch(
      () => undefined,
    );
    await query(`DROP DATABASE IF EXISTS ${base} WITH (FORCE)`, services.pg.database).catch(() => undefined);
    await cleanup(es, indices);
    await es.indices.deleteIndexTemplate({ name: `cdc-history-${dash}-history` }).catch(() => undefined);
    await es.close();
    const kafka = new Admin({ clientId: 'start-test', bootstrapBrokers: services.kafkaBrokers });
    await kafka.deleteTopics({ topics: [dash] }).catch(() => undefined);
    await kafka.close();
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('carries orders to the -live index, stops on Ctrl-C leaving no process behind, and resumes without loss', async () => {
    const first = spawnNpm(['start'], env);
    runs.push(first);
    await eventually('orders in the -live index', async () => ((await indexedOrderIds()).size >= 20 ? true : undefined), 150_000, 500);
    await eventually('a status line', () =>
      /^orders [\d,]+ \| published [\d,]+ \| indexed [\d,]+ \| dead letters 0 \| end-to-end lag /m.test(output(first)) ? true : undefined,
    );
    expect(output(first)).toContain('ADX: off (set ADX_CLUSTER_URL');
    // The status page and its JSON, served by the launcher over what it runs.
    const statusUrl = /^status: (http:\/\/127\.0\.0\.1:\d+)\/ \(page\)/m.exec(output(first))?.[1];
    expect(statusUrl).toBeDefined();
    const json = (await (await fetch(`${statusUrl}/status`)).json()) as {
      postgres: { slot?: { name: string } };
      elasticsearch: { indices?: { index: string; liveDocuments: number }[] };
    };
    expect(json.postgres.slot?.name).toBe(base);
    expect(json.elasticsearch.indices?.find((i) => i.index === index)?.liveDocuments).toBeGreaterThanOrEqual(20);
    const page = await fetch(`${statusUrl}/`);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain(index);
    await interruptAndCheck(first);
    const writtenBefore = await pgOrderIds();
    expect(writtenBefore.length).toBeGreaterThanOrEqual(20);

    const second = spawnNpm(['start'], env);
    runs.push(second);
    // It goes on: new orders are written, and every order so far (the first run's last ones, written or
    // published but not yet indexed when it stopped, included) reaches the index.
    const expected = await eventually(
      'new orders',
      async () => {
        const ids = await pgOrderIds();
        return ids.length >= writtenBefore.length + 20 ? ids : undefined;
      },
      150_000,
      500,
    );
    expect(expected).toEqual(expect.arrayContaining(writtenBefore));
    await eventually(
      'every order in the -live index',
      async () => {
        const indexed = await indexedOrderIds();
        return expected.every((id) => indexed.has(id)) ? true : undefined;
      },
      60_000,
      500,
    );
    await interruptAndCheck(second);
    // Nothing indexed that PostgreSQL does not have.
    const all = new Set(await pgOrderIds());
    for (const id of await indexedOrderIds()) expect(all.has(id)).toBe(true);
  }, 420_000);

  it('stops the children a launcher killed hard left behind before it starts its own', async () => {
    const killed = spawnNpm(['start'], env);
    runs.push(killed);
    await eventually('the worker of the run', () => (/^worker ready/m.test(output(killed)) ? true : undefined), 150_000, 200);
    const orphans = Object.values(readPids().children).flat();
    process.kill(readPids().launcher, 'SIGKILL');
    await killed.exited;
    for (const pid of orphans) expect(alive(pid)).toBe(true);

    const next = spawnNpm(['start'], env);
    runs.push(next);
    await eventually('the worker of the next run', () => (/^worker ready/m.test(output(next)) ? true : undefined), 150_000, 200);
    for (const pid of orphans) {
      expect(alive(pid)).toBe(false);
      expect(output(next)).toMatch(new RegExp(`^(reader|worker) pid ${pid} of an earlier npm start still runs: stopping it$`, 'm'));
    }
    await interruptAndCheck(next);
  }, 420_000);
});
