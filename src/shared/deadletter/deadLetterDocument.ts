import { bodyBytes } from '../events/decode.js';
import type { DeadLetter, DeadLetterDocument } from './types.js';

/** Deterministic name from (function, partition, sequence number, offset): a redelivery overwrites. */
export function deadLetterName(letter: DeadLetter): string {
  const { record, batch } = letter;
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._$-]/g, '_');
  return `${safe(batch.functionName)}/${safe(record.partitionId)}/${record.sequenceNumber.padStart(20, '0')}_${safe(record.offset)}.json`;
}

export function toDeadLetterDocument(letter: DeadLetter, now: Date = new Date()): DeadLetterDocument {
  const { record, batch } = letter;
  const body = record.body;
  return {
    functionName: batch.functionName,
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
    deadLetteredAt: now.toISOString(),
  };
}
