/**
 * The hub's part on Event Hubs: the Functions host's checkpoint blobs, written in Azurite with the
 * layout and metadata the host's checkpoint store uses, against partition properties (the one
 * boundary here: Event Hubs' AMQP management endpoint is not available to the tests).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { collectStatus, statusSourcesFromEnv } from '../../../src/shared/status/collect.js';
import {
  CHECKPOINT_CONTAINER,
  checkpointPrefix,
  collectEventHubsHub,
  readCheckpoints,
  unprocessedEvents,
  type PartitionInfo,
  type PartitionSource,
} from '../../../src/shared/status/eventHubsHub.js';
import { isPartError, type HubStatus, type Part } from '../../../src/shared/status/types.js';
import { serviceEnv, uniqueName } from '../../helpers/services.js';

function ok<T>(part: Part<T>): T {
  if (isPartError(part)) throw new Error(`part failed: ${part.error}`);
  return part;
}

const at = (iso: string) => new Date(iso);
/** Four partitions: busy, empty, never checkpointed, and one whose checkpoint is ahead of a stale read. */
const PARTITIONS: PartitionInfo[] = [
  { partitionId: '0', beginningSequenceNumber: 0, lastEnqueuedSequenceNumber: 99, lastEnqueuedOnUtc: at('2026-03-01T10:00:05Z'), isEmpty: false },
  { partitionId: '1', beginningSequenceNumber: -1, lastEnqueuedSequenceNumber: -1, lastEnqueuedOnUtc: at('1970-01-01T00:00:00Z'), isEmpty: true },
  { partitionId: '2', beginningSequenceNumber: 10, lastEnqueuedSequenceNumber: 19, lastEnqueuedOnUtc: at('2026-03-01T10:00:09Z'), isEmpty: false },
  { partitionId: '3', beginningSequenceNumber: 0, lastEnqueuedSequenceNumber: 40, lastEnqueuedOnUtc: at('2026-03-01T10:00:01Z'), isEmpty: false },
];
const partitionSource: PartitionSource = { partitions: () => Promise.resolve(PARTITIONS.map((p) => ({ ...p }))) };

describe('Event Hubs checkpoints in AzureWebJobsStorage', () => {
  // As the settings spell them; the host lower-cases all three in the blob names.
  const namespace = `${uniqueName('StNs')}.servicebus.windows.net`.replace('stns', 'StNs');
  const eventHub = 'CDC-Events';
  const esGroup = 'ES-Sink';
  let container: ContainerClient;
  const written: string[] = [];

  /** A checkpoint blob as the host writes it: empty, its position in lower-case metadata. */
  async function checkpoint(group: string, partition: string, metadata: Record<string, string>): Promise<void> {
    const name = `${checkpointPrefix(namespace, eventHub, group)}${partition}`;
    await container.getBlockBlobClient(name).upload('', 0, { metadata });
    written.push(name);
  }

  beforeAll(async () => {
    container = BlobServiceClient.fromConnectionString(serviceEnv().azureStorageConnectionString).getContainerClient(CHECKPOINT_CONTAINER);
    await container.createIfNotExists();
    await checkpoint(esGroup, '0', { sequencenumber: '89', offset: '8800', clientidentifier: 'host-1' });
    await checkpoint(esGroup, '3', { sequencenumber: '50', offset: '5000' });
    // A checkpoint without a sequence number (the host writes "" then): as if there were none.
    await checkpoint(esGroup, '2', { sequencenumber: '', offset: '' });
    // The history function's group: partition 0 only.
    await checkpoint('change-history', '0', { sequencenumber: '9', offset: '900' });
    // Ownership blobs live beside the checkpoints and are not checkpoints.
    const ownership = `${namespace.toLowerCase()}/${eventHub.toLowerCase()}/${esGroup.toLowerCase()}/ownership/0`;
    await container.getBlockBlobClient(ownership).upload('', 0, { metadata: { ownerid: 'host-1' } });
    written.push(ownership);
  });
  afterAll(async () => {
    // The container is the host's, shared by every test: only this test's blobs go.
    for (const name of written) await container.deleteBlob(name).catch(() => undefined);
  });

  it('reads the documented layout: lower-case namespace/hub/group, checkpoint/<partition>, sequencenumber and offset metadata', async () => {
    expect(checkpointPrefix(namespace, eventHub, esGroup)).toBe(`${namespace.toLowerCase()}/cdc-events/es-sink/checkpoint/`);
    const checkpoints = await readCheckpoints(container, namespace, eventHub, esGroup);
    expect([...checkpoints.keys()].sort()).toEqual(['0', '2', '3']);
    expect(checkpoints.get('0')).toMatchObject({ partitionId: '0', sequenceNumber: 89, offset: '8800' });
    expect(checkpoints.get('2')).toMatchObject({ sequenceNumber: null, offset: null });
    expect(checkpoints.get('0')!.lastModified).toBeInstanceOf(Date);
    expect((await readCheckpoints(container, namespace, eventHub, 'nobody')).size).toBe(0);
  });

  it("computes each partition's lag as the WebJobs extension does", async () => {
    const hub = await collectEventHubsHub(partitionSource, container, { namespace, eventHub }, [
      { sink: 'elasticsearchSink', consumerGroup: esGroup },
      { sink: 'changeHistory', consumerGroup: 'change-history' },
    ]);
    expect(hub).toMatchObject({ kind: 'eventhubs', topic: eventHub, published: 100 + 0 + 20 + 41, newestEventTime: '2026-03-01T10:00:09.000Z' });
    expect(hub.partitions).toEqual([
      { partition: '0', start: 0, end: 100 },
      { partition: '1', start: 0, end: 0 },
      { partition: '2', start: 10, end: 20 },
      { partition: '3', start: 0, end: 41 },
    ]);
    const es = ok(hub.groups[0]!);
    // 99 − 89; empty; no usable checkpoint: 19 − (10 − 1); checkpoint ahead of the properties: 0.
    expect(es.partitions).toEqual([
      { partition: '0', committed: 89, lag: 10 },
      { partition: '1', committed: null, lag: 0 },
      { partition: '2', committed: null, lag: 10 },
      { partition: '3', committed: 50, lag: 0 },
    ]);
    expect(es).toMatchObject({ sink: 'elasticsearchSink', consumerGroup: esGroup, lag: 20 });
    const history = ok(hub.groups[1]!);
    expect(history.partitions.map((p) => p.lag)).toEqual([90, 0, 10, 41]);
    expect(history.lag).toBe(141);
  });

  it('the arithmetic: empty partitions, first events, no checkpoint, a checkpoint ahead', () => {
    const p = (begin: number, last: number, isEmpty = false): PartitionInfo => ({
      partitionId: '0',
      beginningSequenceNumber: begin,
      lastEnqueuedSequenceNumber: last,
      lastEnqueuedOnUtc: new Date(0),
      isEmpty,
    });
    const cp = (seq: number | null) => ({ partitionId: '0', sequenceNumber: seq, offset: null, lastModified: null });
    expect(unprocessedEvents(p(-1, -1, true), undefined)).toBe(0);
    expect(unprocessedEvents(p(0, 0), undefined)).toBe(1);
    expect(unprocessedEvents(p(5, 9), undefined)).toBe(5);
    expect(unprocessedEvents(p(5, 9), cp(9))).toBe(0);
    expect(unprocessedEvents(p(5, 9), cp(7))).toBe(2);
    expect(unprocessedEvents(p(5, 9), cp(12))).toBe(0);
    expect(unprocessedEvents(p(5, 9), cp(null))).toBe(5);
  });

  it("through the Functions host's settings: EventHubConnection names the namespace, AzureWebJobsStorage the checkpoints", async () => {
    const env = {
      EventHubConnection: `Endpoint=sb://${namespace}/;SharedAccessKeyName=listen;SharedAccessKey=not-a-real-key`,
      AzureWebJobsStorage: serviceEnv().azureStorageConnectionString,
      CDC_TOPIC: eventHub,
      ES_CONSUMER_GROUP: esGroup,
      WORKER_SINKS: 'elasticsearchSink',
    };
    const sources = statusSourcesFromEnv(env, { partitionSource });
    try {
      const status = await collectStatus(sources, { timeoutMs: 20_000 });
      const hub: HubStatus = ok(status.hub);
      expect(hub.groups).toEqual([expect.objectContaining({ sink: 'elasticsearchSink', consumerGroup: esGroup, lag: 20 })]);
      // Unlike Kafka, the hub's part is built from the host's checkpoints, so the status says so.
      expect(hub.kind).toBe('eventhubs');
      expect(status.endToEnd).toMatchObject({ newestCommitted: '2026-03-01T10:00:09.000Z', newestCommittedSource: 'hub' });
    } finally {
      await sources.close();
    }
  });

  it('names the missing setting when the checkpoints cannot be found', () => {
    const sources = statusSourcesFromEnv({ EventHubConnection__fullyQualifiedNamespace: namespace }, { partitionSource });
    expect(sources.hub).toEqual({ error: expect.stringMatching(/^AzureWebJobsStorage: expected the Functions host's storage/) });
    const noNamespace = statusSourcesFromEnv({ STATUS_HUB: 'eventhubs', AzureWebJobsStorage: serviceEnv().azureStorageConnectionString }, { partitionSource });
    expect(noNamespace.hub).toEqual({
      error: expect.stringMatching(/^EventHubConnection__fullyQualifiedNamespace: expected <namespace>\.servicebus\.windows\.net/),
    });
  });
});
