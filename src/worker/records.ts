/**
 * From Kafka records to what every sink handler gets: the same `EventRecord`s and `BatchInfo` the
 * Functions host builds from its trigger metadata (src/functions/host/fromTriggerMetadata.ts), so
 * the batch core, dead-letter names and ADX ingestion tags cannot tell the hosts apart. On Event
 * Hubs' Kafka endpoint the Kafka offset is the event's sequence number, so it serves as both.
 */
import type { Message } from '@platformatic/kafka';
import type { BatchInfo, EventRecord } from '../shared/batch/types.js';

export type KafkaMessage = Message<Buffer, Buffer, Buffer, Buffer>;

/** Where a sink's batches come from, named as the Functions host names them. */
export interface BatchOrigin {
  /** The sink's name (the Functions function name). */
  functionName: string;
  /** Host of the first broker (`<ns>.servicebus.windows.net` on Event Hubs). */
  namespace: string;
  consumerGroup: string;
  topic: string;
}

export function toEventRecord(message: KafkaMessage): EventRecord {
  const offset = message.offset.toString();
  const record: EventRecord = {
    // The original bytes; a tombstone (no value) is an empty body, which the decoder skips.
    body: message.value ?? Buffer.alloc(0),
    partitionId: String(message.partition),
    offset,
    sequenceNumber: offset,
  };
  // Debezium's events have their key only here (the reader's carry it in the value too).
  if (message.key !== undefined && message.key !== null && message.key.length > 0) record.key = message.key;
  if (message.timestamp >= 0n) record.enqueuedTimeUtc = new Date(Number(message.timestamp)).toISOString();
  if (message.headers.size > 0) {
    const properties: Record<string, unknown> = {};
    for (const [key, value] of message.headers) properties[String(key)] = value === undefined || value === null ? null : value.toString('utf8');
    record.properties = properties;
  }
  return record;
}

export function batchInfo(origin: BatchOrigin, records: readonly EventRecord[], invocationId: string): BatchInfo {
  return {
    functionName: origin.functionName,
    invocationId,
    namespace: origin.namespace,
    consumerGroup: origin.consumerGroup,
    eventHubName: origin.topic,
    partitionId: records[0]?.partitionId ?? 'unknown',
    firstOffset: records[0]?.offset ?? '',
    lastOffset: records.at(-1)?.offset ?? '',
  };
}
