/**
 * The whole pipeline end to end, under faults, with nothing lost (the harness: test/e2e/harness.ts).
 * Services of its own (stopped and restarted here, so never the shared ones), the reader and the
 * worker as supervised processes (kill -9 and they are started again), a workload on five tables.
 * Each fault runs on its own, with changes made around it; after its recovery the check: every
 * store equals its table (`verifyPipeline`, the checker of `npm run verify`), every committed change
 * is on the topic (lost = 0), the history holds exactly the pivot of the distinct changes, and the
 * duplicates a crash causes are counted and absorbed (no difference despite them). The long
 * mixed-fault run is in the benchmark (`npm run bench:e2e`).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BlobServiceClient } from '@azure/storage-blob';
import { Client } from '@elastic/elasticsearch';
import fs from 'node:fs';
import type pg from 'pg';
import { readDeadLetters } from '../../src/shared/deadletter/readDeadLetters.js';
import { spawnEntryPoint } from '../helpers/childProcess.js';
import {
  bigTransaction,
  faultRun,
  handedRows,
  injectPoison,
  killWorkerMidBatch,
  pgConnect,
  POISON,
  sleep,
  startPipeline,
  stopPipeline,
  TYPES_TABLE,
  KEYLESS_TABLE,
  UNROUTED_ROUTE,
  UNROUTED_TABLE,
  until,
  workloadSlice,
  type CheckResult,
  type FaultFigures,
  type Pipeline,
} from './harness.js';

let p: Pipeline;
let c: pg.Client;
let round = 0;
let last: CheckResult | undefined;
const figures: Record<string, FaultFigures> = {};

/** Every store equals its table, nothing lost, the history equals the pivot of the distinct changes. */
function expectConsistent(result: CheckResult): void {
  if (result.differences > 0) throw new Error(`the stores differ from the tables after recovery:\n${result.report.format()}`);
  expect(result.report.summaries.flatMap((s) => s.shown)).toEqual([]);
  expect(result.differences).toBe(0);
  expect(Object.fromEntries(result.lost)).toEqual(Object.fromEntries([...result.committed.keys()].map((t) => [t, 0])));
  expect(Object.fromEntries(result.historyDocuments)).toEqual(Object.fromEntries([...result.digest.historyEntries].filter(([, n]) => n > 0)));
}

async function run(name: string, fault: () => Promise<void>, recoveryMs = 150_000): Promise<FaultFigures> {
  const { figures: f, result } = await faultRun(p, last, fault, recoveryMs);
  last = result;
  figures[name] = f;
  expectConsistent(result);
  expect(f.lost).toBe(0);
  expect(f.delivered).toBe(f.written);
  return f;
}

/** The test's own session again after PostgreSQL came back. */
async function reconnect(): Promise<void> {
  await c.end().catch(() => undefined);
  c = await until('PostgreSQL', () => pgConnect(p.services), 60_000);
  c.on('error', () => undefined); // the restart ends the session; the next query says so
}

beforeAll(async () => {
  p = await startPipeline();
  c = await pgConnect(p.services);
  c.on('error', () => undefined); // a PostgreSQL restart ends the session; reconnect() opens another
}, 180_000);

afterAll(async () => {
  if (process.env.E2E_FIGURES_FILE) fs.writeFileSync(process.env.E2E_FIGURES_FILE, JSON.stringify(figures, null, 2) + '\n');
  await c?.end().catch(() => undefined);
  await stopPipeline(p);
}, 120_000);

describe('the pipeline end to end, under faults', () => {
  it('delivers the snapshot and a workload (inserts, updates, deletes, key changes, a rollback) to every store', async () => {
    const f = await run('none', async () => {
      for (let i = 0; i < 3; i++) await workloadSlice(c, round++);
    });
    expect(f.written).toBeGreaterThan(0);
    expect(f.duplicatesOnTopic).toBe(0);
  }, 240_000);

  it('kill -9 of the reader five times at random moments: restarted by the supervisor, nothing lost, the replays absorbed', async () => {
    const f = await run('readerKill9x5', async () => {
      for (let kill = 0; kill < 5; kill++) {
        const starts = p.reader.starts;
        const work = (async () => {
          for (let i = 0; i < 2; i++) await workloadSlice(c, round++);
        })();
        await sleep(200 + Math.floor(Math.random() * 1500));
        p.reader.kill9();
        await work;
        await until('the supervisor to restart the reader', () => Promise.resolve(p.reader.starts > starts ? true : undefined), 30_000);
      }
    });
    expect(p.reader.kills).toBe(5);
    expect(f.written).toBeGreaterThan(0);
  }, 300_000);

  it('kill -9 of the worker in the middle of a batch: the batch is redelivered and absorbed', async () => {
    const starts = p.worker.starts;
    await run('workerKill9MidBatch', async () => {
      // Many changes at once, so batches are in flight when the kill lands.
      await c.query(`INSERT INTO ${KEYLESS_TABLE} SELECT i, 'burst' FROM generate_series(1, 5000) i`);
      await workloadSlice(c, round++, 2000);
      await killWorkerMidBatch(p);
      await workloadSlice(c, round++);
    });
    expect(p.worker.starts).toBeGreaterThan(starts);
  }, 300_000);

  it('dead-letters poison records (a change of an unrouted table, invalid JSON, a non-envelope, an unknown op) with their reasons, and carries on', async () => {
    await run('poisonRecords', async () => {
      await workloadSlice(c, round++);
      await injectPoison(p);
      await workloadSlice(c, round++);
    });
    const container = BlobServiceClient.fromConnectionString(p.services.env.AZURE_STORAGE_CONNECTION_STRING!).getContainerClient(p.deadLetterContainer);
    const letters: { functionName: string; body: string; reason: string }[] = [];
    for await (const letter of readDeadLetters(container)) {
      if ('document' in letter)
        letters.push({
          functionName: letter.document.functionName,
          body: Buffer.from(letter.document.body, 'base64').toString('utf8'),
          reason: letter.document.reason,
        });
    }
    // Each poison record in each of the three sinks, with a reason.
    for (const poison of POISON) {
      const of = letters.filter((l) => l.body === poison.value);
      expect([poison.name, of.map((l) => l.functionName).sort()]).toEqual([poison.name, ['adxSink', 'changeHistory', 'elasticsearchSink']]);
      for (const l of of) expect(l.reason).not.toBe('');
    }
    expect(letters).toHaveLength(POISON.length * 3);
  }, 300_000);

  it('dlq:replay on those dead letters: what has no fix still fails with its reason; the unrouted change lands once its route is added, once', async () => {
    const replay = async (routes: Record<string, unknown>) => {
      const child = spawnEntryPoint('scripts/dlq-replay.ts', { ...p.worker.env, CDC_ROUTES: JSON.stringify(routes) }, ['--container', p.deadLetterContainer]);
      const code = await child.exited;
      return { code, out: child.lines.map((l) => (typeof l.msg === 'string' ? l.msg : JSON.stringify(l))).join('\n') };
    };
    const stillFailing = (out: string) => out.split('\n').filter((l) => l.startsWith('still fails '));
    // The cause not fixed yet: all of them still fail, each refused with its reason, none marked.
    const before = await replay(p.routes);
    expect(before.code).toBe(1);
    expect(stillFailing(before.out)).toHaveLength(POISON.length * 3);
    for (const line of stillFailing(before.out)) expect(line).toMatch(/: refused: \S/);
    expect(before.out).toMatch(/No route for table e2e\.late/);
    expect(before.out).toContain(`dlq:replay: 0 replayed, ${POISON.length * 3} still fail`);
    // The route added: the change lands in every sink; the three that are no change events still fail.
    const fixed = await replay({ ...p.routes, [UNROUTED_TABLE]: UNROUTED_ROUTE });
    expect(fixed.code).toBe(1);
    expect(fixed.out).toContain(`dlq:replay: 3 replayed, ${(POISON.length - 1) * 3} still fail`);
    for (const functionName of ['elasticsearchSink', 'changeHistory', 'adxSink'])
      expect(fixed.out).toMatch(new RegExp(`replayed \\S+ \\(${functionName} partition \\d+ offset \\d+\\): ok`));
    const es = new Client({ node: p.services.env.ELASTICSEARCH_URL! });
    try {
      expect((await es.get<Record<string, unknown>>({ index: 'e2e-late', id: '1' }))._source).toMatchObject({ id: 1, note: 'routed later', __deleted: false });
    } finally {
      await es.close();
    }
    expect(handedRows(p.kusto, 'Late').map((r) => r.note)).toEqual(['routed later']);
    // Again: the replayed ones are skipped, the rest still fail with their reasons.
    const again = await replay({ ...p.routes, [UNROUTED_TABLE]: UNROUTED_ROUTE });
    expect(again.out).toContain('3 already replayed (skipped)');
    expect(again.out).toContain(`dlq:replay: 0 replayed, ${(POISON.length - 1) * 3} still fail`);
    expect(again.code).toBe(1);
  }, 120_000);

  it('a row bigger than the broker message limit arrives whole (claim check)', async () => {
    await run('oversizedRow', async () => {
      // md5 chains do not compress: 1.6 MB of them is over the broker's 1 MB limit whatever the codec.
      await c.query(`UPDATE ${TYPES_TABLE} SET big = (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 50000) i) WHERE id = 1`);
      await workloadSlice(c, round++);
    });
  }, 300_000);

  it('Kafka stopped for 20 s, then started again: nothing lost', async () => {
    await run('kafkaStop20s', async () => {
      await workloadSlice(c, round++);
      await p.services.stop('kafka');
      const work = (async () => {
        for (let i = 0; i < 3; i++) await workloadSlice(c, round++);
      })();
      await sleep(20_000);
      await p.services.start('kafka');
      await work;
      await workloadSlice(c, round++);
    });
  }, 300_000);

  it('Elasticsearch stopped for 30 s, then started again: nothing lost', async () => {
    await run('elasticsearchStop30s', async () => {
      await workloadSlice(c, round++);
      await p.services.stop('elasticsearch');
      for (let i = 0; i < 3; i++) await workloadSlice(c, round++);
      await sleep(30_000);
      await p.services.start('elasticsearch');
      await workloadSlice(c, round++);
    });
  }, 300_000);

  it('PostgreSQL restarted: the reader resumes from its slot, nothing lost', async () => {
    await run('postgresRestart', async () => {
      await workloadSlice(c, round++);
      await p.services.stop('postgres');
      await p.services.start('postgres');
      await reconnect();
      await workloadSlice(c, round++);
    });
  }, 300_000);

  it('a 200,000-row transaction, a column added mid-stream and a TRUNCATE', async () => {
    const f = await run(
      'bigTransactionDdlTruncate',
      async () => {
        await bigTransaction(c, 200_000);
        await workloadSlice(c, round++);
        await c.query(`ALTER TABLE ${TYPES_TABLE} ADD COLUMN added text`);
        await c.query(`UPDATE ${TYPES_TABLE} SET added = 'new ' || id WHERE id % 2 = 0`);
        await c.query(`INSERT INTO ${TYPES_TABLE} (id, added, big) VALUES (900001, 'inserted with it', 'b')`);
        await c.query(`TRUNCATE ${KEYLESS_TABLE}`);
        await c.query(`INSERT INTO ${KEYLESS_TABLE} VALUES (1, 'after truncate'), (2, NULL)`);
        await workloadSlice(c, round++);
      },
      240_000,
    );
    expect(f.written).toBeGreaterThan(200_000);
  }, 420_000);
});
