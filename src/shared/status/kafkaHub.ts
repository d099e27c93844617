/**
 * The hub's part on Kafka (or Event Hubs' Kafka endpoint, where the worker runs the sinks): per
 * partition the log's start and end offsets, and per sink the consumer group's committed offset,
 * through the admin API. Lag = end − committed (a committed offset is the next record to read); a
 * group that has committed nothing has every retained record ahead of it (end − start).
 */
import type { Admin } from '@platformatic/kafka';
import type { ConsumerGroupStatus, HubPartition, HubStatus, Part } from './types.js';

/** Kafka ListOffsets timestamps: the latest offset, the earliest, and the record with the largest timestamp (KIP-734). */
const LATEST = -1n;
const EARLIEST = -2n;
const MAX_TIMESTAMP = -3n;

export interface GroupRef {
  sink: string;
  consumerGroup: string;
}

async function offsets(admin: Admin, topic: string, ids: number[], timestamp: bigint) {
  const [listed] = await admin.listOffsets({ topics: [{ name: topic, partitions: ids.map((partitionIndex) => ({ partitionIndex, timestamp })) }] });
  return new Map((listed?.partitions ?? []).map((p) => [p.partitionIndex, p]));
}

export async function collectKafkaHub(admin: Admin, topic: string, groups: readonly GroupRef[]): Promise<HubStatus> {
  const metadata = await admin.metadata({ topics: [topic] });
  const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
  if (count === 0) throw new Error(`the topic ${topic} (CDC_TOPIC) has no partitions on the broker: does it exist?`);
  const ids = Array.from({ length: count }, (_, i) => i);
  const [ends, starts] = await Promise.all([offsets(admin, topic, ids, LATEST), offsets(admin, topic, ids, EARLIEST)]);
  // The newest record's timestamp is the publish time; older brokers (before 3.0) do not answer it.
  const newest = await offsets(admin, topic, ids, MAX_TIMESTAMP).catch(() => new Map<number, { timestamp: bigint; offset: bigint }>());
  const partitions: HubPartition[] = ids.map((id) => ({
    partition: String(id),
    start: Number(starts.get(id)?.offset ?? 0n),
    end: Number(ends.get(id)?.offset ?? 0n),
  }));
  const newestMs = Math.max(...[...newest.values()].map((p) => (p.offset >= 0n && p.timestamp > 0n ? Number(p.timestamp) : 0)), 0);

  const listed =
    groups.length === 0
      ? []
      : await admin.listConsumerGroupOffsets({ groups: groups.map((g) => ({ groupId: g.consumerGroup, topics: [{ name: topic, partitionIndexes: ids }] })) });
  const byGroup = new Map(listed.map((g) => [g.groupId, g]));
  const groupParts: Part<ConsumerGroupStatus>[] = groups.map((g) => {
    const committed = new Map<number, bigint>();
    for (const t of byGroup.get(g.consumerGroup)?.topics ?? [])
      if (t.name === topic) for (const p of t.partitions) committed.set(p.partitionIndex, p.committedOffset);
    const parts = partitions.map((p) => {
      const offset = committed.get(Number(p.partition));
      const at = offset === undefined || offset < 0n ? null : Number(offset);
      return { partition: p.partition, committed: at, lag: Math.max(0, p.end - (at ?? p.start)) };
    });
    return { sink: g.sink, consumerGroup: g.consumerGroup, lag: parts.reduce((sum, p) => sum + p.lag, 0), partitions: parts };
  });
  return {
    kind: 'kafka',
    topic,
    partitions,
    published: partitions.reduce((sum, p) => sum + p.end, 0),
    newestEventTime: newestMs > 0 ? new Date(newestMs).toISOString() : null,
    groups: groupParts,
  };
}
