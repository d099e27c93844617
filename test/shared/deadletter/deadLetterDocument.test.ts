import { describe, expect, it } from '@jest/globals';
import { deadLetterName, toDeadLetterDocument } from '../../../src/shared/deadletter/deadLetterDocument.js';

describe('dead-letter documents', () => {
  const letter = {
    record: { body: Buffer.from([0xde, 0xad]), partitionId: '1', offset: '42', sequenceNumber: '7', enqueuedTimeUtc: '2024-01-01T00:00:00Z' },
    batch: { functionName: 'adxSink', consumerGroup: 'adx-sink', partitionId: '1', firstOffset: '42', lastOffset: '42' },
    reason: 'NotJson',
  };
  it('are named deterministically from function, partition, sequence number and offset', () => {
    expect(deadLetterName(letter)).toBe('adxSink/1/00000000000000000007_42.json');
  });
  it('keep the original bytes and the position', () => {
    expect(toDeadLetterDocument(letter, new Date(0))).toMatchObject({
      body: '3q0=',
      bodyType: 'buffer',
      partitionId: '1',
      offset: '42',
      sequenceNumber: '7',
      consumerGroup: 'adx-sink',
      reason: 'NotJson',
    });
  });
});
