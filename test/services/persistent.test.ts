/**
 * The orchestrator's persistent mode (what `npm start` keeps between runs): `up --work-dir` starts
 * PostgreSQL, Kafka, Elasticsearch and Azurite with their data in that directory, `down --keep-data` stops them and
 * keeps it, and the next `up` finds the data again: a table row and a replication slot, a topic's
 * record and a consumer group's committed offset, a document, a blob. The second start finds the old ports
 * taken, so the kept data comes back on new ports (Kafka's KRaft controller included). Its own state
 * directory and services, like lifecycle.test.ts.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { BlobServiceClient } from '@azure/storage-blob';
import { Kafka, logLevel } from 'kafkajs';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);
const cli = path.resolve('test/services/cli.mjs');
const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pg-cdc-persistent-'));
// mkdtemp makes it private; the service user (PostgreSQL refuses root) must reach the data inside.
fs.chmodSync(stateDir, 0o755);
const workDir = path.join(stateDir, 'data');
const childEnv: NodeJS.ProcessEnv = { ...process.env, PG_CDC_SERVICES_STATE_DIR: stateDir };
for (const name of ['PGHOST', 'PGPORT', 'KAFKA_BROKERS', 'ELASTICSEARCH_URL', 'AZURE_STORAGE_CONNECTION_STRING']) delete childEnv[name];
const only = ['--only', 'postgres,kafka,elasticsearch,azurite'];

interface State {
  services: Record<string, { pid: number; ports: Record<string, number> }>;
  ports: Record<string, Record<string, number>>;
}
const readState = (): State => JSON.parse(fs.readFileSync(path.join(stateDir, '.services.state.json'), 'utf8')) as State;
const readEnv = (): Record<string, string> =>
  Object.fromEntries(
    fs
      .readFileSync(path.join(stateDir, '.services.env'), 'utf8')
      .split('\n')
      .map((l) => /^([A-Z_]+)=(.*)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1]!, m[2]!]),
  );
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function pgQuery<R extends pg.QueryResultRow>(env: Record<string, string>, sql: string): Promise<R[]> {
  const client = new pg.Client({ host: env.PGHOST, port: Number(env.PGPORT), user: env.PGUSER, database: env.PGDATABASE });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

const kafka = (env: Record<string, string>) =>
  new Kafka({ brokers: env.KAFKA_BROKERS!.split(','), clientId: 'persistent-test', logLevel: logLevel.NOTHING, retry: { retries: 10 } });

/** Listens on `port` (loopback) until closed: makes the next start find it taken. */
async function occupy(port: number): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  return server;
}

describe('services:up --work-dir / services:down --keep-data', () => {
  afterAll(async () => {
    await run(process.execPath, [cli, 'down', ...only], { env: childEnv }).catch(() => undefined);
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('keeps PostgreSQL, Kafka, Elasticsearch and Azurite data across a stop, and starts it again on other ports', async () => {
    await run(process.execPath, [cli, 'up', '--work-dir', workDir, ...only], { env: childEnv });
    const first = readEnv();
    await pgQuery(first, 'CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)');
    await pgQuery(first, "SELECT pg_create_logical_replication_slot('kept_slot', 'pgoutput')");
    const admin = kafka(first).admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'kept', numPartitions: 1 }], waitForLeaders: true });
    const producer = kafka(first).producer();
    await producer.connect();
    await producer.send({ topic: 'kept', messages: [{ value: 'one' }, { value: 'two' }] });
    await producer.disconnect();
    await admin.setOffsets({ groupId: 'kept-group', topic: 'kept', partitions: [{ partition: 0, offset: '1' }] });
    await admin.disconnect();
    const container = BlobServiceClient.fromConnectionString(first.AZURE_STORAGE_CONNECTION_STRING!).getContainerClient('kept');
    await container.create();
    await container.getBlockBlobClient('b').upload('blob', 4);
    const put = await fetch(`${first.ELASTICSEARCH_URL}/kept/_doc/1?refresh=true`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ x: 42 }),
    });
    expect(put.status).toBe(201);

    const started = readState();
    await run(process.execPath, [cli, 'down', '--keep-data', ...only], { env: childEnv });
    for (const svc of Object.values(started.services)) expect(alive(svc.pid)).toBe(false);
    expect(fs.existsSync(path.join(stateDir, '.services.env'))).toBe(false);
    const kept = readState();
    expect(kept.services).toEqual({});
    expect(kept.ports).toEqual(Object.fromEntries(Object.entries(started.services).map(([name, svc]) => [name, svc.ports])));

    // Every old port taken by someone else: the kept data must come back on new ones.
    const taken = await Promise.all(Object.values(kept.ports).flatMap((ports) => Object.values(ports).map((port) => occupy(port))));
    try {
      const second = await run(process.execPath, [cli, 'up', '--work-dir', workDir, ...only], { env: childEnv });
      expect(second.stdout).toMatch(/started: (postgres|kafka|elasticsearch|azurite)(, (postgres|kafka|elasticsearch|azurite)){3}\)/);
    } finally {
      for (const server of taken) server.close();
    }
    const again = readEnv();
    expect(again.PGPORT).not.toBe(first.PGPORT);
    expect(again.KAFKA_BROKERS).not.toBe(first.KAFKA_BROKERS);
    expect(readState().services.kafka!.ports.controllerPort).not.toBe(kept.ports.kafka!.controllerPort);

    expect(await pgQuery<{ x: number }>(again, 'SELECT x FROM kept')).toEqual([{ x: 42 }]);
    expect(await pgQuery<{ slot_name: string }>(again, "SELECT slot_name FROM pg_replication_slots WHERE slot_name = 'kept_slot'")).toEqual([
      { slot_name: 'kept_slot' },
    ]);
    const admin2 = kafka(again).admin();
    await admin2.connect();
    try {
      expect(await admin2.fetchTopicOffsets('kept')).toEqual([expect.objectContaining({ partition: 0, low: '0', high: '2' })]);
      const [committed] = await admin2.fetchOffsets({ groupId: 'kept-group', topics: ['kept'] });
      expect(committed?.partitions).toEqual([expect.objectContaining({ partition: 0, offset: '1' })]);
    } finally {
      await admin2.disconnect();
    }
    const doc = (await (await fetch(`${again.ELASTICSEARCH_URL}/kept/_doc/1`)).json()) as { found: boolean; _source: unknown };
    expect(doc).toMatchObject({ found: true, _source: { x: 42 } });
    const blob = BlobServiceClient.fromConnectionString(again.AZURE_STORAGE_CONNECTION_STRING!).getContainerClient('kept').getBlobClient('b');
    expect((await blob.downloadToBuffer()).toString()).toBe('blob');
  });
});
