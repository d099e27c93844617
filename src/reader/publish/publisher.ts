/** What the reader needs from a broker: send a batch in order, resolve only once it is durable. */
export interface OutRecord {
  topic: string;
  key: Buffer | undefined;
  /** null: a tombstone (Debezium format, after a delete), so log compaction removes the key. */
  value: Buffer | null;
  headers?: Map<string, Buffer>;
  /** Set: this partition (control events go to every partition of a topic); unset: by the key. */
  partition?: number;
}

export interface Publisher {
  /**
   * Sends the records in order; resolves when the broker acknowledged every one of them (acks=all),
   * rejects if any failed. Callers never have two sends outstanding, which keeps per-partition order
   * without an idempotent producer (Event Hubs Standard has none). Once it has settled it keeps no
   * reference to the records' bytes: the snapshot frees a chunk's buffers when its records are
   * confirmed (`RecordBuffers`, tracked), and a view kept past that would read as empty.
   */
  send(records: OutRecord[]): Promise<void>;
  /** How many partitions `topic` has, creating it where the broker auto-creates topics (control events are published to each; README "Schema changes"). */
  partitions?(topic: string): Promise<number>;
  close(): Promise<void>;
}

/** A control event (no key) as one record per partition of `topic`, all with the same value. */
export function toEveryPartition(topic: string, event: unknown, partitions: number): OutRecord[] {
  const value = Buffer.from(JSON.stringify(event));
  return Array.from({ length: partitions }, (_, partition) => ({ topic, key: undefined, value, partition }));
}
