/** What the reader needs from a broker: send a batch in order, resolve only once it is durable. */
export interface OutRecord {
  topic: string;
  key: Buffer | undefined;
  /** null: a tombstone (Debezium format, after a delete), so log compaction removes the key. */
  value: Buffer | null;
  headers?: Map<string, Buffer>;
  /** An explicit partition (control events go to each partition of a topic); unset: by key. */
  partition?: number;
}

export interface Publisher {
  /**
   * Sends the records in order; resolves when the broker acknowledged every one of them (acks=all),
   * rejects if any failed. Callers never have two sends outstanding, which keeps per-partition order
   * without an idempotent producer (Event Hubs Standard has none).
   */
  send(records: OutRecord[]): Promise<void>;
  close(): Promise<void>;
  /** The partition count of a topic (creating it where the broker auto-creates topics); absent: unknown. */
  partitions?(topic: string): Promise<number>;
}
