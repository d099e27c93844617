import { bodyBytes } from '../events/decode.js';
import type { DeadLetter, DeadLetterDocument } from './types.js';

const safe = (s: string) => s.replace(/[^A-Za-z0-9._$-]/g, '_');

/** `2024-01-01T00:00:00.123Z` → `20240101T000000.123Z`: sortable, no characters a blob path dislikes. */
const compactTime = (time: string) => safe(time.replace(/[-:]/g, ''));

/**
 * Deterministic name, unique to the record's origin: a redelivery of the same record overwrites its
 * dead-letter, a different record never does.
 * `<namespace>/<hub>/<consumer group>/<function>/<partition>/<enqueued time>_<sequence number>_<offset>.json`.
 * Offsets and sequence numbers restart at 0 when a hub is recreated, so the namespace, the hub and the
 * enqueued time are part of the name. A record the host could not place (`unplacedId`) is named by
 * that id (`.../<partition>/unplaced/<id>.json`), unique to its delivery.
 */
export function deadLetterName(letter: DeadLetter): string {
  const { record, batch } = letter;
  const origin = [
    batch.namespace ?? 'unknown-namespace',
    batch.eventHubName ?? 'unknown-hub',
    batch.consumerGroup ?? 'unknown-consumer-group',
    batch.functionName,
    record.partitionId,
  ]
    .map(safe)
    .join('/');
  if (record.unplacedId !== undefined) return `${origin}/unplaced/${safe(record.unplacedId)}.json`;
  const time = record.enqueuedTimeUtc === undefined ? 'unknown-time' : compactTime(record.enqueuedTimeUtc);
  return `${origin}/${time}_${record.sequenceNumber.padStart(20, '0')}_${safe(record.offset)}.json`;
}

export function toDeadLetterDocument(letter: DeadLetter, now: Date = new Date()): DeadLetterDocument {
  const { record, batch } = letter;
  const body = record.body;
  return {
    functionName: batch.functionName,
    namespace: batch.namespace ?? null,
    consumerGroup: batch.consumerGroup ?? null,
    eventHubName: batch.eventHubName ?? null,
    partitionId: record.partitionId,
    offset: record.offset,
    sequenceNumber: record.sequenceNumber,
    enqueuedTimeUtc: record.enqueuedTimeUtc ?? null,
    reason: letter.reason,
    body: bodyBytes(body).toString('base64'),
    bodyEncoding: 'base64',
    bodyType: Buffer.isBuffer(body) || body instanceof Uint8Array ? 'buffer' : typeof body === 'string' ? 'string' : 'json',
    properties: record.properties ?? null,
    invocationId: batch.invocationId ?? null,
    unplacedId: record.unplacedId ?? null,
    ...(record.key !== undefined ? { key: Buffer.from(record.key).toString('base64') } : {}),
    deadLetteredAt: now.toISOString(),
  };
}
