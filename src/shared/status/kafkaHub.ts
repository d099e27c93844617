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

/** Attempts at the newest-record query before the publish time is reported unknown. */
const NEWEST_ATTEMPTS = 3;
const NEWEST_RETRY_MS = 200;

/**
 * The record with the largest timestamp per partition (KIP-734), or none when the broker does not
 * answer it. Asked again after a failure, because a failure loses the end-to-end lag: the suspected
 * cause of a CI run (2026-12-02) whose status showed that lag unknown while every other figure of the
 * hub was there (not reproduced in 16 runs since) is a partition briefly refusing the query, e.g. just
 * after its leader was elected. A broker before 3.0 refuses it every time, and then costs the retries'
 * 400 ms.
 */
async function newestRecords(admin: Admin, topic: string, ids: number[]): Promise<Map<number, { timestamp: bigint; offset: bigint }>> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await offsets(admin, topic, ids, MAX_TIMESTAMP);
    } catch {
      if (attempt >= NEWEST_ATTEMPTS) return new Map();
      await new Promise((resolve) => setTimeout(resolve, NEWEST_RETRY_MS));
    }
  }
}

export async function collectKafkaHub(admin: Admin, topic: string, groups: readonly GroupRef[]): Promise<HubStatus> {
  const metadata = await admin.metadata({ topics: [topic] });
  const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
  if (count === 0) throw new Error(`the topic ${topic} (CDC_TOPIC) has no partitions on the broker: does it exist?`);
  const ids = Array.from({ length: count }, (_, i) => i);
  const [ends, starts] = await Promise.all([offsets(admin, topic, ids, LATEST), offsets(admin, topic, ids, EARLIEST)]);
  // The newest record's timestamp is the publish time; older brokers (before 3.0) do not answer it.
  const newest = await newestRecords(admin, topic, ids);
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
