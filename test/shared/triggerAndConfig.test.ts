import { describe, expect, it } from '@jest/globals';
import { getBool, getInt, getJson, getList, getString } from '../../src/shared/config/env.js';
import { deadLetterStoreFromEnv, pointerResolverFromEnv } from '../../src/shared/deadletter/blobDeadLetterStore.js';
import { deadLetterName, toDeadLetterDocument } from '../../src/shared/deadletter/deadLetterDocument.js';
import { fromTriggerMetadata } from '../../src/shared/eventhub/fromTriggerMetadata.js';
import { ConfigError } from '../../src/shared/errors.js';

describe('fromTriggerMetadata', () => {
  it('normalises positions the host hands over as numbers, strings or Long-like objects', () => {
    const long = { low: 5, high: 0, toString: () => '5' };
    const { records, batch } = fromTriggerMetadata(['a', 'b'], {
      invocationId: 'i',
      functionName: 'f',
      triggerMetadata: {
        partitionContext: { partitionId: '3', consumerGroup: 'g', eventHubName: 'h' },
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
      partitionId: '3',
      consumerGroup: 'g',
      eventHubName: 'h',
      firstOffset: '100',
      lastOffset: '200',
    });
  });

  it('copes with a single message and no metadata (names stay unique within the batch)', () => {
    const { records, batch } = fromTriggerMetadata({ x: 1 }, { invocationId: 'i', functionName: 'f' });
    expect(records).toEqual([{ body: { x: 1 }, partitionId: 'unknown', offset: 'unknown-0', sequenceNumber: '0' }]);
    expect(batch.partitionId).toBe('unknown');
  });
});

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

describe('configuration', () => {
  it('fails fast naming the variable', () => {
    expect(() => getString({}, 'ELASTICSEARCH_URL')).toThrow(/ELASTICSEARCH_URL/);
    expect(() => getInt({ N: 'x' }, 'N', 1)).toThrow(ConfigError);
    expect(() => getInt({ N: '0' }, 'N', 1, { min: 1 })).toThrow(/N must be >= 1/);
    expect(() => getBool({ B: 'maybe' }, 'B', false)).toThrow(/B must be true or false/);
    expect(() => getJson({ J: '{' }, 'J', {})).toThrow(/J is not valid JSON/);
    expect(() => deadLetterStoreFromEnv({})).toThrow(/SINK_DEADLETTER_ACCOUNT_URL or SINK_DEADLETTER_CONNECTION_STRING/);
  });
  it('trims, defaults and splits', () => {
    expect(getString({ A: '  x ' }, 'A')).toBe('x');
    expect(getInt({ N: ' ' }, 'N', 3)).toBe(3);
    expect(getList({ L: 'a, b,,c' }, 'L', [])).toEqual(['a', 'b', 'c']);
    expect(getBool({ B: 'YES' }, 'B', false)).toBe(true);
  });
  it('reads pointer events from the dead-letter account unless told otherwise', () => {
    expect(pointerResolverFromEnv({})).toBeUndefined();
    expect(pointerResolverFromEnv({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' })).toBeDefined();
  });
});
