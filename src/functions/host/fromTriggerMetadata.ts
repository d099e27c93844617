/**
 * From what the Event Hubs trigger (`cardinality: 'many'`) delivers to `EventRecord`s: the messages
 * array plus `context.triggerMetadata` arrays (`offsetArray`, `sequenceNumberArray`,
 * `enqueuedTimeUtcArray`, `propertiesArray`) and `partitionContext` (the host's
 * `TriggerPartitionContext`: `FullyQualifiedNamespace`, `EventHubName`, `ConsumerGroup`,
 * `PartitionId`, camel-cased by the library). The host's converter turns numeric strings into numbers
 * and may hand 64-bit integers over as numbers, strings or Long-like objects, so every position is
 * normalised to a string here.
 */
import type { BatchInfo, EventRecord } from '../../shared/batch/types.js';

/** Where the trigger reads from, as configured: used when `partitionContext` does not say. */
export interface TriggerOrigin {
  namespace?: string | undefined;
  eventHubName?: string | undefined;
  consumerGroup?: string | undefined;
}

export interface TriggerContextLike {
  invocationId: string;
  functionName: string;
  triggerMetadata?: Record<string, unknown>;
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function positionText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object' && 'toString' in value && typeof value.toString === 'function') {
    const text = (value as { toString(): string }).toString();
    if (text !== '[object Object]') return text;
  }
  return JSON.stringify(value);
}

function field(obj: unknown, ...names: string[]): string | undefined {
  if (typeof obj !== 'object' || obj === null) return undefined;
  for (const name of names) {
    const value = (obj as Record<string, unknown>)[name];
    if (value !== undefined && value !== null) return positionText(value);
  }
  return undefined;
}

export interface TriggerBatch {
  records: EventRecord[];
  batch: BatchInfo;
  /** How many records the metadata did not place (no offset, sequence number or enqueued time). */
  unplaced: number;
}

export function fromTriggerMetadata(messages: unknown, context: TriggerContextLike, origin: TriggerOrigin = {}): TriggerBatch {
  const bodies = Array.isArray(messages) ? messages : [messages];
  const meta = context.triggerMetadata ?? {};
  const partitionContext = meta.partitionContext;
  const partitionId = field(partitionContext, 'partitionId', 'PartitionId') ?? 'unknown';
  const offsets = asArray(meta.offsetArray);
  const sequenceNumbers = asArray(meta.sequenceNumberArray);
  const enqueued = asArray(meta.enqueuedTimeUtcArray);
  const properties = asArray(meta.propertiesArray);
  let unplaced = 0;

  const records = bodies.map((body, i): EventRecord => {
    const props = properties[i];
    const offset = positionText(offsets[i]);
    const sequenceNumber = positionText(sequenceNumbers[i]);
    const time = positionText(enqueued[i]);
    // Metadata shorter than the bodies (never seen from the host, but then array positions would
    // repeat in every batch): the record gets an id unique to this invocation, so its dead-letter
    // cannot overwrite another batch's, nor its placeholder offset repeat in another batch's range.
    const unplacedId = offset === undefined || sequenceNumber === undefined || time === undefined ? `${context.invocationId}-${i}` : undefined;
    const record: EventRecord = {
      body,
      partitionId,
      offset: offset ?? `unknown-${context.invocationId}-${i}`,
      sequenceNumber: sequenceNumber ?? 'unknown',
    };
    if (time !== undefined) record.enqueuedTimeUtc = time;
    if (unplacedId !== undefined) {
      record.unplacedId = unplacedId;
      unplaced++;
    }
    if (typeof props === 'object' && props !== null && !Array.isArray(props)) record.properties = props as Record<string, unknown>;
    return record;
  });

  const batch: BatchInfo = {
    functionName: context.functionName,
    invocationId: context.invocationId,
    namespace: field(partitionContext, 'fullyQualifiedNamespace', 'FullyQualifiedNamespace') ?? origin.namespace ?? 'unknown-namespace',
    partitionId,
    firstOffset: records[0]?.offset ?? '',
    lastOffset: records.at(-1)?.offset ?? '',
  };
  const consumerGroup = field(partitionContext, 'consumerGroup', 'ConsumerGroup') ?? origin.consumerGroup;
  const eventHubName = field(partitionContext, 'eventHubName', 'EventHubName') ?? origin.eventHubName;
  if (consumerGroup !== undefined) batch.consumerGroup = consumerGroup;
  if (eventHubName !== undefined) batch.eventHubName = eventHubName;
  return { records, batch, unplaced };
}
