import type { BatchInfo, EventRecord } from '../batch/types.js';

export interface DeadLetter {
  record: EventRecord;
  batch: BatchInfo;
  reason: string;
}

/** What is stored for each dead-lettered record (JSON). */
export interface DeadLetterDocument {
  functionName: string;
  namespace: string | null;
  consumerGroup: string | null;
  eventHubName: string | null;
  partitionId: string;
  offset: string;
  sequenceNumber: string;
  enqueuedTimeUtc: string | null;
  reason: string;
  /** Original body bytes, base64. A body the host had already parsed is re-serialised JSON. */
  body: string;
  bodyEncoding: 'base64';
  /** How the body arrived from the host. */
  bodyType: 'buffer' | 'string' | 'json';
  properties: Record<string, unknown> | null;
  invocationId: string | null;
  /** Set when the host could not place the record (see `EventRecord.unplacedId`). */
  unplacedId: string | null;
  /** The Kafka record key, base64, when the host had it (the worker): Debezium's events are keyed only there; dlq:replay hands it back. */
  key?: string;
  deadLetteredAt: string;
}

export interface DeadLetterStore {
  /** Stores one record; idempotent (a redelivery overwrites the same entry). Throws when unavailable. */
  put(letter: DeadLetter): Promise<void>;
}
