/**
 * `npm run dlq:replay` on real dead letters: batches go through the batch core and the real
 * Elasticsearch sink into a real index, and their poison records into a real Blob dead-letter
 * container (Azurite): documents a strict mapping refuses (with their rejection markers), a table
 * without a route, a body that is not JSON. Then the causes are fixed (the mapping, the route) and the
 * dead letters replayed: they land with their original versions, a newer document written meanwhile
 * stays, each is marked replayed and skipped by the next replay, `dryRun` changes nothing,
 * `since`/`reason` select, and what still fails is reported with why.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ContainerClient } from '@azure/storage-blob';
import { processBatch } from '../../../src/shared/batch/processBatch.js';
import type { BatchInfo, EventRecord } from '../../../src/shared/batch/types.js';
import { blobServiceClient } from '../../../src/shared/core/blobService.js';
import { BlobDeadLetterStore } from '../../../src/shared/deadletter/blobDeadLetterStore.js';
import type { RoutesConfig } from '../../../src/shared/routing/routes.js';
import { replayDeadLetters, type ReplayOptions } from '../../../src/shared/sinks/replay.js';
import { spawnEntryPoint } from '../../helpers/childProcess.js';
import { changeEvent } from '../../helpers/events.js';
import { serviceEnv, uniqueName } from '../../helpers/services.js';
import { cleanup, testClient, testSink } from '../esTestKit.js';

const name = uniqueName('replay');
const schema = `${name}_s`;
const index = `${name.replaceAll('_', '-')}-items`;
const laterIndex = `${index}-later`;
const controlIndex = `${index}-control`;
const containerName = name.replaceAll('_', '-').slice(0, 63);
const routed: RoutesConfig = { [`${schema}.items`]: { elasticsearch: { index } } };
/** After the fix: the table that had no route has one. */
const fixed: RoutesConfig = { ...routed, [`${schema}.later`]: { elasticsearch: { index: laterIndex } } };
const client = testClient();
let container: ContainerClient;

const env = () => ({
  ELASTICSEARCH_URL: serviceEnv().elasticsearchUrl,
  ES_CONTROL_INDEX: controlIndex,
  ES_NUMBER_OF_REPLICAS: '0',
  CDC_ROUTES: JSON.stringify(fixed),
  AZURE_STORAGE_CONNECTION_STRING: serviceEnv().azureStorageConnectionString,
  SINK_DEADLETTER_CONTAINER: containerName,
});

let offset = 100;
/** One batch as the host would run it, dead letters into the Blob container; returns what was dead-lettered. */
async function run(partitionId: string, bodies: unknown[]): Promise<number> {
  const records: EventRecord[] = bodies.map((body, i) => ({
    body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
    partitionId,
    offset: String((offset += 16)),
    sequenceNumber: String(offset),
    enqueuedTimeUtc: new Date(1_700_000_000_000 + offset + i).toISOString(),
  }));
  const batch: BatchInfo = {
    functionName: 'elasticsearchSink',
    namespace: 'test.servicebus.windows.net',
    eventHubName: 'cdc-events',
    consumerGroup: 'elasticsearch-sink',
    partitionId,
    firstOffset: records[0]!.offset,
    lastOffset: records[records.length - 1]!.offset,
  };
  const sink = testSink(client, routed, { controlIndex });
  const report = await processBatch(records, { sink, deadLetters: new BlobDeadLetterStore(container), batch });
  expect(report.retried).toBe(0);
  return report.deadLettered;
}

const item = (id: number, lsn: number, extra: Record<string, unknown> = {}) =>
  changeEvent({ table: `${schema}.items`, op: 'u', after: { id, name: `item ${id} at ${lsn}`, ...extra }, key: { id }, lsn });
const replay = (options: Partial<ReplayOptions> = {}) =>
  replayDeadLetters({ container, sinkDeps: (definition) => definition.depsFromEnv(env(), undefined, 'replay'), ...options });
const source = async (id: string, where = index) => {
  const doc = await client.get<Record<string, unknown>>({ index: where, id });
  return { version: doc._version, ...doc._source };
};
/** Each blob's metadata, by blob name. */
async function metadata(): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const blob of await blobNames()) out[blob] = (await container.getBlobClient(blob).getProperties()).metadata ?? {};
  return out;
}
async function blobNames(): Promise<string[]> {
  const names: string[] = [];
  for await (const b of container.listBlobsFlat()) names.push(b.name);
  return names;
}

let since: Date;

beforeAll(async () => {
  container = blobServiceClient({ connectionString: serviceEnv().azureStorageConnectionString })!.getContainerClient(containerName);
  // The index exists (from the sink's templates), then its mapping turns strict: a new column is refused (400).
  expect(await run('0', [item(1, 1000), item(2, 1008), item(3, 1016)])).toBe(0);
  await client.indices.putMapping({ index, dynamic: 'strict' });
  expect(
    await run('0', [
      item(1, 2000, { note: 'first note' }),
      item(2, 2008, { note: 'older note' }),
      changeEvent({ table: `${schema}.later`, op: 'c', after: { id: 7, name: 'later' }, key: { id: 7 }, lsn: 2016 }),
      'not json {',
    ]),
  ).toBe(4);
  // Meanwhile key 2 moves on: the newer version replaces its rejection marker.
  expect(await run('0', [item(2, 3000)])).toBe(0);
  await new Promise((resolve) => setTimeout(resolve, 20));
  since = new Date();
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect(await run('1', [item(3, 2100, { note: 'third note' })])).toBe(1);
}, 60_000);

afterAll(async () => {
  await container.deleteIfExists();
  await cleanup(client, [index, laterIndex, controlIndex]);
  await client.close();
});

describe('replayDeadLetters (npm run dlq:replay)', () => {
  it('starts from real dead letters: the refused versions are rejection markers, nothing of the unrouted table is written', async () => {
    expect(await blobNames()).toHaveLength(5);
    expect(await source('1')).toMatchObject({ version: 2000, __deleted: true, __rejected: expect.stringMatching(/strict/) });
    expect(await source('2')).toMatchObject({ version: 3000, __deleted: false, name: 'item 2 at 3000' });
    expect(await client.indices.exists({ index: laterIndex })).toBe(false);
  });

  it('dry run: reports what would be replayed and what would fail, writes and marks nothing', async () => {
    const result = await replay({ dryRun: true });
    expect(result.replayed).toHaveLength(4);
    expect(result.failed.map((f) => [f.status, f.reason])).toEqual([['deadLetter', expect.stringMatching(/Body is not JSON/)]]);
    expect(await source('1')).toMatchObject({ version: 2000, __rejected: expect.any(String) });
    expect(Object.values(await metadata())).toEqual([{}, {}, {}, {}, {}]);
  });

  it('--since: only the dead letters stored from then on (after the mapping is fixed)', async () => {
    await client.indices.putMapping({ index, properties: { note: { type: 'keyword' } } });
    const result = await replay({ since });
    expect(result).toMatchObject({ read: 5, alreadyReplayed: 0, filteredOut: 4, failed: [] });
    expect(result.replayed.map((r) => [r.partitionId, r.outcome])).toEqual([['1', 'ok']]);
    expect(await source('3')).toMatchObject({ version: 2100, note: 'third note', __deleted: false });
  });

  it('--reason: the refused versions land with their own version, the newer document is not overwritten, both are marked', async () => {
    const result = await replay({ reason: 'STRICT' });
    expect(result).toMatchObject({ read: 5, alreadyReplayed: 1, filteredOut: 2, failed: [] });
    expect(result.replayed.map((r) => r.outcome)).toEqual(['ok', 'ok']);
    // Key 1: the marker at 2000 is replaced by the replayed event at 2000 (external_gte; with the
    // sinks' usual external versions it would answer 409 and the marker would stay).
    const one = await source('1');
    expect(one).toMatchObject({ version: 2000, __version: 2000, note: 'first note', __deleted: false });
    expect(one).not.toHaveProperty('__rejected');
    // Key 2: the replayed 2008 is older than the 3000 written meanwhile (409): the document stays.
    expect(await source('2')).toMatchObject({ version: 3000, name: 'item 2 at 3000' });
    expect(await source('2')).not.toHaveProperty('note');
    const marked = Object.values(await metadata()).filter((m) => m.cdcreplayedat !== undefined);
    expect(marked).toHaveLength(3);
    expect(marked.every((m) => m.cdcreplayoutcome === 'ok')).toBe(true);
  });

  it('the rest: the route added since lets the unrouted record land; the body that is not JSON still fails, with why', async () => {
    const result = await replay();
    expect(result).toMatchObject({ read: 5, alreadyReplayed: 3, filteredOut: 0 });
    expect(result.replayed.map((r) => r.originalReason)).toEqual([expect.stringMatching(/No route for table .*\.later/)]);
    expect(await source('7', laterIndex)).toMatchObject({ version: 2016, name: 'later' });
    expect(result.failed).toEqual([expect.objectContaining({ status: 'deadLetter', reason: expect.stringMatching(/Body is not JSON/), partitionId: '0' })]);
  });

  it('a second replay skips everything replayed and reports what still fails', async () => {
    const result = await replay();
    expect(result).toMatchObject({ read: 5, alreadyReplayed: 4, filteredOut: 0, replayed: [] });
    expect(result.failed).toHaveLength(1);
  });

  it('the CLI prints each outcome and exits 1 while something still fails; a missing --container is a usage error', async () => {
    const usage = spawnEntryPoint('scripts/dlq-replay.ts', env(), ['--dry-run']);
    expect(await usage.exited).toBe(2);
    expect(JSON.stringify(usage.lines)).toMatch(/--container is required/);

    const before = await metadata();
    const cli = spawnEntryPoint('scripts/dlq-replay.ts', env(), ['--container', containerName, '--dry-run']);
    expect(await cli.exited).toBe(1);
    const out = cli.lines.map((l) => (typeof l.msg === 'string' ? l.msg : JSON.stringify(l))).join('\n');
    expect(out).toContain(`dlq:replay: ${containerName}: 5 dead letters, 4 already replayed (skipped), 0 left out by --since/--reason`);
    expect(out).toMatch(/still fails .*\(elasticsearchSink partition 0 offset \d+\): refused: .*Body is not JSON/);
    expect(out).toContain('dlq:replay: 0 would replay, 1 still fail (dry run: nothing written or marked)');
    expect(await metadata()).toEqual(before);
  }, 60_000);
});
