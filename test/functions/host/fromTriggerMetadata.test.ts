import { describe, expect, it } from '@jest/globals';
import { fromTriggerMetadata } from '../../../src/functions/host/fromTriggerMetadata.js';

describe('fromTriggerMetadata', () => {
  it('normalises positions the host hands over as numbers, strings or Long-like objects', () => {
    const long = { low: 5, high: 0, toString: () => '5' };
    const { records, batch } = fromTriggerMetadata(['a', 'b'], {
      invocationId: 'i',
      functionName: 'f',
      triggerMetadata: {
        partitionContext: { partitionId: '3', consumerGroup: 'g', eventHubName: 'h', fullyQualifiedNamespace: 'ns.servicebus.windows.net' },
        offsetArray: [100, '200'],
        sequenceNumberArray: [long, 6],
        enqueuedTimeUtcArray: ['2024-01-01T00:00:00Z', '2024-01-01T00:00:01Z'],
        propertiesArray: [{ a: 1 }, null],
      },
    });
    expect(records.map((r) => [r.offset, r.sequenceNumber, r.enqueuedTimeUtc, r.properties])).toEqual([
      ['100', '5', '2024-01-01T00:00:00Z', { a: 1 }],
      ['200', '6', '2024-01-01T00:00:01Z', undefined],
    ]);
    expect(batch).toEqual({
      functionName: 'f',
      invocationId: 'i',
      namespace: 'ns.servicebus.windows.net',
      partitionId: '3',
      consumerGroup: 'g',
      eventHubName: 'h',
      firstOffset: '100',
      lastOffset: '200',
    });
  });

  it('takes namespace, hub and consumer group from the configured origin when partitionContext lacks them, else unknown-namespace', () => {
    const origin = { namespace: 'cfg.servicebus.windows.net', eventHubName: 'cdc-events', consumerGroup: 'elasticsearch-sink' };
    const meta = { partitionContext: { partitionId: '1' }, offsetArray: [1], sequenceNumberArray: [1], enqueuedTimeUtcArray: ['2024-01-01T00:00:00Z'] };
    expect(fromTriggerMetadata(['a'], { invocationId: 'i', functionName: 'f', triggerMetadata: meta }, origin).batch).toMatchObject(origin);
    expect(fromTriggerMetadata(['a'], { invocationId: 'i', functionName: 'f', triggerMetadata: meta }).batch.namespace).toBe('unknown-namespace');
  });

  it('metadata shorter than the bodies: the unplaced records get ids and offsets unique to the invocation, not array positions', () => {
    const meta = { partitionContext: { partitionId: '3' }, offsetArray: [100], sequenceNumberArray: [5, 6], enqueuedTimeUtcArray: ['2024-01-01T00:00:00Z'] };
    const first = fromTriggerMetadata(['a', 'b', 'c'], { invocationId: 'inv-1', functionName: 'f', triggerMetadata: meta });
    const next = fromTriggerMetadata(['a', 'b', 'c'], { invocationId: 'inv-2', functionName: 'f', triggerMetadata: meta });
    expect(first.unplaced).toBe(2);
    expect(first.records.map((r) => [r.offset, r.sequenceNumber, r.unplacedId])).toEqual([
      ['100', '5', undefined],
      ['unknown-inv-1-1', '6', 'inv-1-1'],
      ['unknown-inv-1-2', 'unknown', 'inv-1-2'],
    ]);
    expect(first.batch.lastOffset).toBe('unknown-inv-1-2');
    expect(next.records.map((r) => r.unplacedId)).toEqual([undefined, 'inv-2-1', 'inv-2-2']);
  });

  it('copes with a single message and no metadata', () => {
    const { records, batch, unplaced } = fromTriggerMetadata({ x: 1 }, { invocationId: 'i', functionName: 'f' });
    expect(records).toEqual([{ body: { x: 1 }, partitionId: 'unknown', offset: 'unknown-i-0', sequenceNumber: 'unknown', unplacedId: 'i-0' }]);
    expect(batch.partitionId).toBe('unknown');
    expect(unplaced).toBe(1);
  });
});
