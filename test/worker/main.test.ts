/**
 * The worker's entry point as a child process (src/worker/main.ts through the dev loader): start-up
 * failures named with their exit codes, the probes, and SIGTERM in the middle of a batch.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import {
  committedOffsets,
  createTopic,
  deleteTopic,
  documents,
  eventually,
  freePort,
  indexingStats,
  indicesOf,
  orderEvents,
  produce,
  spawnWorker,
  testNames,
  workerEnv,
  type ChildWorker,
  type TestNames,
} from './helpers.js';
import { cleanup, testClient } from '../shared/esTestKit.js';

const client = testClient();
const used: TestNames[] = [];
const children: ChildWorker[] = [];

function spawn(env: Record<string, string>): ChildWorker {
  const child = spawnWorker(env);
  children.push(child);
  return child;
}

async function setup(prefix: string, partitions: number): Promise<TestNames> {
  const names = testNames(prefix);
  used.push(names);
  await createTopic(names.topic, partitions);
  return names;
}

const line = (child: ChildWorker, msg: string) => child.lines.find((l) => l.msg === msg);
const running = (child: ChildWorker) => eventually('worker running', () => (line(child, 'running') ? true : undefined), 60_000);

afterAll(async () => {
  for (const child of children) if (child.proc.exitCode === null) child.proc.kill('SIGKILL');
  for (const names of used) {
    await deleteTopic(names.topic);
    await cleanup(client, indicesOf(names));
  }
  await client.close();
});

describe('worker entry point', () => {
  it('invalid configuration: exit code 2, names the variable, never echoes a secret', async () => {
    const secret = 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=supersecretvalue';
    const child = spawn({ EVENTHUBS_CONNECTION_STRING: secret, WORKER_MAX_BATCH_SIZE: 'lots' });
    expect(await child.exited).toBe(2);
    expect(line(child, 'invalid configuration')).toMatchObject({ level: 'error', variable: 'WORKER_MAX_BATCH_SIZE' });
    expect(JSON.stringify(child.lines)).not.toContain('supersecretvalue');

    // A sink named in WORKER_SINKS without its settings: the sink's missing setting is named.
    const adx = spawn({ ...workerEnv(testNames('w_noadx')), WORKER_SINKS: 'adxSink' });
    expect(await adx.exited).toBe(2);
    expect(line(adx, 'invalid configuration')).toMatchObject({ variable: 'ADX_CLUSTER_URL' });
  });

  it('an unreachable broker or a missing topic: exit code 1, naming KAFKA_BROKERS or CDC_TOPIC', async () => {
    const names = testNames('w_unreachable');
    const unreachable = spawn(workerEnv(names, { KAFKA_BROKERS: '127.0.0.1:1' }));
    const missing = spawn(workerEnv(names));
    expect(await unreachable.exited).toBe(1);
    expect(line(unreachable, 'cannot start')).toMatchObject({
      variable: 'KAFKA_BROKERS',
      error: expect.stringContaining('cannot reach the broker') as unknown,
    });
    expect(await missing.exited).toBe(1);
    expect(line(missing, 'cannot start')).toMatchObject({
      variable: 'CDC_TOPIC',
      error: expect.stringContaining(`topic ${names.topic} does not exist`) as unknown,
    });
  });

  it('serves /healthz, /readyz and /metrics for every sink it runs, and exits 0 on SIGTERM', async () => {
    const names = await setup('w_probes', 2);
    const port = await freePort();
    const child = spawn(workerEnv(names, { WORKER_SINKS: 'elasticsearchSink,changeHistory', HEALTH_PORT: String(port) }));
    await running(child);
    const base = `http://127.0.0.1:${port}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await eventually('ready', async () => ((await fetch(`${base}/readyz`)).status === 200 ? true : undefined));
    const metrics = (await (await fetch(`${base}/metrics`)).json()) as { topic: string; sinks: Record<string, Record<string, unknown>> };
    expect(metrics.topic).toBe(names.topic);
    expect(metrics.sinks.elasticsearchSink).toMatchObject({ consumerGroup: names.group, state: 'running', partitions: { '0': {}, '1': {} } });
    expect(metrics.sinks.changeHistory).toMatchObject({ consumerGroup: `${names.group}-history`, state: 'running' });
    // The pipeline's status on the same port: its own consumer groups on the topic, and the page.
    const status = (await (await fetch(`${base}/status`)).json()) as { hub: { kind: string; topic: string; groups: { consumerGroup: string; lag: number }[] } };
    expect(status.hub).toMatchObject({ kind: 'kafka', topic: names.topic });
    expect(status.hub.groups.map((g) => g.consumerGroup)).toEqual([names.group, `${names.group}-history`]);
    const page = await fetch(`${base}/`);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toContain(`lag <b data-stat="hub.groups.elasticsearchSink.lag" data-value="0">0</b>`);

    child.proc.kill('SIGTERM');
    expect(await child.exited).toBe(0);
    expect(line(child, 'stopped')).toMatchObject({ signal: 'SIGTERM' });
  });

  it('SIGTERM in the middle of a batch: it is abandoned uncommitted, the next worker handles it, nothing is lost and the duplicates are no-ops', async () => {
    // Prepare: one batch of 10 orders and 10 holdings; the holdings index refuses writes, so every
    // attempt writes the orders and fails on the holdings, and the batch is retried.
    const names = await setup('w_sigterm', 1);
    const orders = orderEvents(1, 10, 1);
    const holdings = orderEvents(101, 10, 1, 'bank.holding');
    const records = orders.flatMap((o, i) => [o.record, holdings[i]!.record]);
    await produce(names.topic, records);
    await client.indices.create({ index: names.holdingIndex });
    await client.indices.putSettings({ index: names.holdingIndex, settings: { 'index.blocks.write': true } });
    const env = workerEnv(names, { WORKER_MAX_BATCH_SIZE: '100', WORKER_SHUTDOWN_TIMEOUT_MS: '5000' });
    const attempts = (child: ChildWorker) => child.lines.filter((l) => /offsets 0\.\.19: 20 records/.test(String(l.msg))).length;

    // Act: SIGTERM once the batch has failed twice (it is in flight: retrying).
    const first = spawn(env);
    await eventually('two failed attempts', () => (attempts(first) >= 2 ? true : undefined), 60_000);
    first.proc.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.lines.some((l) => /abandoned/.test(String(l.msg)))).toBe(true);
    expect(await committedOffsets(names.group, names.topic)).toEqual(new Map());
    expect((await documents(client, names.index)).size).toBe(10); // written by the failed attempts

    await client.indices.putSettings({ index: names.holdingIndex, settings: { 'index.blocks.write': null } });
    const second = spawn(env);
    await eventually(
      'the batch committed by the next worker',
      async () => ((await committedOffsets(names.group, names.topic)).get(0) === 20n ? true : undefined),
      60_000,
    );
    second.proc.kill('SIGTERM');
    expect(await second.exited).toBe(0);

    // Assess: every row once, at its version; each attempt after the first rewrote the 10 orders, and
    // Elasticsearch refused each of those as a version conflict (a no-op): that many duplicates.
    const orderDocs = await documents(client, names.index);
    const holdingDocs = await documents(client, names.holdingIndex);
    for (const { event } of orders) expect(orderDocs.get(String(event.after!.orderid))?.version).toBe(event.source.lsn);
    for (const { event } of holdings) expect(holdingDocs.get(String(event.after!.holding_id))?.version).toBe(event.source.lsn);
    const allAttempts = attempts(first) + attempts(second);
    const stats = await indexingStats(client, names.index);
    expect(stats).toEqual({ indexed: 10, versionConflicts: 10 * (allAttempts - 1) });
    expect(attempts(second)).toBe(1);
  });
});
