import { describe, expect, it } from '@jest/globals';
import { deadLetterName, toDeadLetterDocument } from '../../../src/shared/deadletter/deadLetterDocument.js';

describe('dead-letter documents', () => {
  const letter = {
    record: { body: Buffer.from([0xde, 0xad]), partitionId: '1', offset: '42', sequenceNumber: '7', enqueuedTimeUtc: '2024-01-01T00:00:00Z' },
    batch: {
      functionName: 'adxSink',
      namespace: 'prod.servicebus.windows.net',
      eventHubName: 'cdc-events',
      consumerGroup: 'adx-sink',
      partitionId: '1',
      firstOffset: '42',
      lastOffset: '42',
    },
    reason: 'NotJson',
  };
  it('are named deterministically from namespace, hub, consumer group, function, partition, enqueued time, sequence number and offset', () => {
    expect(deadLetterName(letter)).toBe('prod.servicebus.windows.net/cdc-events/adx-sink/adxSink/1/20240101T000000Z_00000000000000000007_42.json');
    expect(deadLetterName(structuredClone(letter))).toBe(deadLetterName(letter)); // a redelivery overwrites
  });
  it('names that ignore which hub they came from: a recreated hub, another hub, namespace or consumer group never overwrite', () => {
    const recreated = { ...letter, record: { ...letter.record, enqueuedTimeUtc: '2024-03-01T09:30:00.250Z' } };
    const others = [
      recreated,
      { ...letter, batch: { ...letter.batch, eventHubName: 'cdc-events-2' } },
      { ...letter, batch: { ...letter.batch, namespace: 'staging.servicebus.windows.net' } },
      { ...letter, batch: { ...letter.batch, consumerGroup: 'replay' } },
    ];
    const names = new Set([letter, ...others].map(deadLetterName));
    expect(names.size).toBe(others.length + 1);
    expect(deadLetterName(recreated)).toBe('prod.servicebus.windows.net/cdc-events/adx-sink/adxSink/1/20240301T093000.250Z_00000000000000000007_42.json');
    const { namespace: _n, eventHubName: _h, consumerGroup: _c, ...bare } = letter.batch;
    expect(deadLetterName({ ...letter, batch: bare })).toBe(
      'unknown-namespace/unknown-hub/unknown-consumer-group/adxSink/1/20240101T000000Z_00000000000000000007_42.json',
    );
  });
  it('name a record the host could not place by its delivery id', () => {
    const unplaced = { ...letter, record: { body: 'x', partitionId: '1', offset: 'unknown-inv-9-3', sequenceNumber: 'unknown', unplacedId: 'inv-9-3' } };
    expect(deadLetterName(unplaced)).toBe('prod.servicebus.windows.net/cdc-events/adx-sink/adxSink/1/unplaced/inv-9-3.json');
    expect(toDeadLetterDocument(unplaced, new Date(0))).toMatchObject({ unplacedId: 'inv-9-3', namespace: 'prod.servicebus.windows.net' });
  });
  it("keep the Kafka record key when the host had it (Debezium's events are keyed only there), and no key field otherwise", () => {
    const keyed = { ...letter, record: { ...letter.record, key: Buffer.from('{"id":1}') } };
    expect(toDeadLetterDocument(keyed, new Date(0)).key).toBe(Buffer.from('{"id":1}').toString('base64'));
    expect('key' in toDeadLetterDocument(letter, new Date(0))).toBe(false);
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
