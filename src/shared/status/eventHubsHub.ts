/**
 * The hub's part on Azure Event Hubs with the Functions host: per partition the last enqueued
 * sequence number (the hub's partition properties, over AMQP), and per sink the checkpoint the host
 * wrote to `AzureWebJobsStorage`. The host's checkpoint store (Azure.Messaging.EventHubs'
 * `BlobCheckpointStoreInternal`, used by Microsoft.Azure.WebJobs.Extensions.EventHubs) keeps one
 * empty blob per partition in the container `azure-webjobs-eventhub`, named
 * `<fully qualified namespace>/<event hub>/<consumer group>/checkpoint/<partition id>` with the
 * first three in lower case, and the position in its metadata: `sequencenumber` (the last event
 * handled) and `offset`. The lag is the extension's own unprocessed-event count
 * (`EventHubsMetricsProvider.GetUnprocessedEventCount`): last enqueued − checkpoint, or every
 * event of the partition when there is no checkpoint yet.
 *
 * The partition properties need Event Hubs' AMQP endpoint, so they sit behind `PartitionSource`
 * (the one piece the tests cannot reach); everything else here is exercised against Azurite.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { GroupRef } from './kafkaHub.js';
import type { ConsumerGroupStatus, GroupPartition, HubStatus, Part } from './types.js';

/** The host's default checkpoint container (EventHubOptions.CheckpointContainer). */
export const CHECKPOINT_CONTAINER = 'azure-webjobs-eventhub';

/** What the status needs of a partition's properties (`@azure/event-hubs` `PartitionProperties`). */
export interface PartitionInfo {
  partitionId: string;
  beginningSequenceNumber: number;
  lastEnqueuedSequenceNumber: number;
  lastEnqueuedOnUtc: Date;
  isEmpty: boolean;
}

/** The outermost boundary: the hub's partitions and their properties. */
export interface PartitionSource {
  partitions(): Promise<PartitionInfo[]>;
  close?(): Promise<void>;
}

/** The position a checkpoint blob records. */
export interface Checkpoint {
  partitionId: string;
  /** The last event handled; null when the blob has no usable `sequencenumber`. */
  sequenceNumber: number | null;
  offset: string | null;
  lastModified: Date | null;
}

/** `<namespace>/<hub>/<group>/checkpoint/`, lower case as the host writes it. */
export function checkpointPrefix(namespace: string, eventHub: string, consumerGroup: string): string {
  return `${namespace.toLowerCase()}/${eventHub.toLowerCase()}/${consumerGroup.toLowerCase()}/checkpoint/`;
}

/** The checkpoints of one consumer group, by partition id (empty when the container or the group has none yet). */
export async function readCheckpoints(
  container: ContainerClient,
  namespace: string,
  eventHub: string,
  consumerGroup: string,
): Promise<Map<string, Checkpoint>> {
  const prefix = checkpointPrefix(namespace, eventHub, consumerGroup);
  const out = new Map<string, Checkpoint>();
  try {
    for await (const blob of container.listBlobsFlat({ prefix, includeMetadata: true })) {
      const partitionId = blob.name.slice(prefix.length);
      if (partitionId === '' || partitionId.includes('/')) continue;
      const meta = blob.metadata ?? {};
      const sequence = meta.sequencenumber;
      // The host writes "" when it has no sequence number; the SDK's placeholder offset is "no offset".
      const sequenceNumber = sequence !== undefined && /^-?\d+$/.test(sequence) ? Number(sequence) : null;
      const offset = meta.offset === undefined || meta.offset === '' || meta.offset.toLowerCase() === 'no offset' ? null : meta.offset;
      out.set(partitionId, { partitionId, sequenceNumber, offset, lastModified: blob.properties.lastModified ?? null });
    }
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return out;
    throw error;
  }
  return out;
}

/**
 * Events of the partition the group has not handled: the WebJobs extension's arithmetic. An empty
 * partition has none; without a checkpoint every event from the beginning is ahead; otherwise last −
 * checkpoint (never below 0: a checkpoint can be ahead of a stale read of the properties).
 */
export function unprocessedEvents(partition: PartitionInfo, checkpoint: Checkpoint | undefined): number {
  if (partition.isEmpty) return 0;
  const handled = checkpoint?.sequenceNumber ?? partition.beginningSequenceNumber - 1;
  return Math.max(0, partition.lastEnqueuedSequenceNumber - handled);
}

export async function collectEventHubsHub(
  source: PartitionSource,
  container: ContainerClient,
  ids: { namespace: string; eventHub: string },
  groups: readonly GroupRef[],
): Promise<HubStatus> {
  const infos = (await source.partitions()).sort((a, b) => Number(a.partitionId) - Number(b.partitionId) || a.partitionId.localeCompare(b.partitionId));
  const groupParts = await Promise.all(
    groups.map(async (g): Promise<Part<ConsumerGroupStatus>> => {
      try {
        const checkpoints = await readCheckpoints(container, ids.namespace, ids.eventHub, g.consumerGroup);
        const partitions: GroupPartition[] = infos.map((p) => {
          const checkpoint = checkpoints.get(p.partitionId);
          return { partition: p.partitionId, committed: checkpoint?.sequenceNumber ?? null, lag: unprocessedEvents(p, checkpoint) };
        });
        return { sink: g.sink, consumerGroup: g.consumerGroup, lag: partitions.reduce((sum, p) => sum + p.lag, 0), partitions };
      } catch (error) {
        return { error: `cannot read the checkpoints of ${g.consumerGroup} in ${CHECKPOINT_CONTAINER} (AzureWebJobsStorage): ${(error as Error).message}` };
      }
    }),
  );
  const partitions = infos.map((p) => ({
    partition: p.partitionId,
    start: p.isEmpty ? p.lastEnqueuedSequenceNumber + 1 : p.beginningSequenceNumber,
    end: p.lastEnqueuedSequenceNumber + 1,
  }));
  const newest = Math.max(0, ...infos.filter((p) => !p.isEmpty).map((p) => p.lastEnqueuedOnUtc.getTime()));
  return {
    kind: 'eventhubs',
    topic: ids.eventHub,
    partitions,
    published: partitions.reduce((sum, p) => sum + Math.max(0, p.end), 0),
    newestEventTime: newest > 0 ? new Date(newest).toISOString() : null,
    groups: groupParts,
  };
}

/** The real `PartitionSource`: `@azure/event-hubs`' management calls (loaded only when Event Hubs is configured). */
export async function eventHubsPartitionSource(connection: { connectionString: string } | { namespace: string }, eventHub: string): Promise<PartitionSource> {
  const { EventHubConsumerClient } = await import('@azure/event-hubs');
  let client: InstanceType<typeof EventHubConsumerClient>;
  if ('connectionString' in connection) {
    client = new EventHubConsumerClient(EventHubConsumerClient.defaultConsumerGroupName, connection.connectionString, eventHub);
  } else {
    const { DefaultAzureCredential } = await import('@azure/identity');
    client = new EventHubConsumerClient(EventHubConsumerClient.defaultConsumerGroupName, connection.namespace, eventHub, new DefaultAzureCredential());
  }
  return {
    partitions: async () => {
      const ids = await client.getPartitionIds();
      return Promise.all(ids.map((id) => client.getPartitionProperties(id)));
    },
    close: () => client.close(),
  };
}
