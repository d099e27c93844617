/** How the functions register with the host (the library skips the actual call outside the host). */
import { describe, expect, it } from '@jest/globals';
import { trigger } from '@azure/functions';
import { adxSinkOptions } from '../../src/functions/adxSink.js';
import { changeHistoryOptions } from '../../src/functions/changeHistory.js';
import { elasticsearchSinkOptions } from '../../src/functions/elasticsearchSink.js';
import { ordersGeneratorOptions } from '../../src/functions/ordersGenerator.js';

describe('function registration', () => {
  const sinks = [adxSinkOptions, elasticsearchSinkOptions, changeHistoryOptions];

  it.each(sinks)('batches (cardinality many, binary bodies) and retries forever with exponential backoff', (options) => {
    expect(options).toMatchObject({ cardinality: 'many', dataType: 'binary', connection: 'EventHubConnection', eventHubName: 'cdc-events' });
    expect(options.retry).toEqual({ strategy: 'exponentialBackoff', maxRetryCount: -1, minimumInterval: { seconds: 5 }, maximumInterval: { seconds: 900 } });
  });

  it('passes dataType through to the trigger binding (the library copies unknown trigger options)', () => {
    const { handler: _handler, retry: _retry, ...triggerOptions } = elasticsearchSinkOptions;
    expect(trigger.eventHub(triggerOptions)).toMatchObject({ type: 'eventHubTrigger', dataType: 'binary', cardinality: 'many' });
  });

  it('gives every sink its own consumer group', () => {
    expect(new Set(sinks.map((o) => o.consumerGroup)).size).toBe(3);
  });

  it('schedules the orders generator with a six-field NCRONTAB expression', () => {
    expect(String(ordersGeneratorOptions.schedule).split(' ')).toHaveLength(6);
  });
});
