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

  it('copes with a single message and no metadata (names stay unique within the batch)', () => {
    const { records, batch } = fromTriggerMetadata({ x: 1 }, { invocationId: 'i', functionName: 'f' });
    expect(records).toEqual([{ body: { x: 1 }, partitionId: 'unknown', offset: 'unknown-0', sequenceNumber: '0' }]);
    expect(batch.partitionId).toBe('unknown');
  });
});
