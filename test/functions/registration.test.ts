/** How the functions register with the host (the library skips the actual call outside the host). */
import { describe, expect, it, jest } from '@jest/globals';
import { app, trigger } from '@azure/functions';
import { ordersGeneratorOptions } from '../../src/functions/ordersGenerator.js';
import { registerSinks, sinkTriggerOptions, triggerOrigin } from '../../src/functions/host/registerSinks.js';
import { eventHubNamespace } from '../../src/functions/host/settings.js';
import { SINKS, sinkDefinition } from '../../src/shared/sinks/registry.js';

describe('function registration', () => {
  const sinks = SINKS.map((definition) => sinkTriggerOptions(definition, {}));

  it.each(sinks)('batches (cardinality many, binary bodies) and retries forever with exponential backoff', (options) => {
    expect(options).toMatchObject({ cardinality: 'many', dataType: 'binary', connection: 'EventHubConnection', eventHubName: 'cdc-events' });
    expect(options.retry).toEqual({ strategy: 'exponentialBackoff', maxRetryCount: -1, minimumInterval: { seconds: 5 }, maximumInterval: { seconds: 900 } });
  });

  it('passes dataType through to the trigger binding (the library copies unknown trigger options)', () => {
    const { handler: _handler, retry: _retry, ...triggerOptions } = sinkTriggerOptions(sinkDefinition('elasticsearchSink'), {});
    expect(trigger.eventHub(triggerOptions)).toMatchObject({ type: 'eventHubTrigger', dataType: 'binary', cardinality: 'many' });
  });

  it('gives every sink its own consumer group, overridable by its setting', () => {
    expect(sinks.map((o) => o.consumerGroup)).toEqual(['adx-sink', 'elasticsearch-sink', 'change-history']);
    expect(sinkTriggerOptions(sinkDefinition('adxSink'), { ADX_CONSUMER_GROUP: 'mine' }).consumerGroup).toBe('%ADX_CONSUMER_GROUP%');
    expect(sinkTriggerOptions(sinkDefinition('adxSink'), { CDC_TOPIC: 'hub2' }).eventHubName).toBe('%CDC_TOPIC%');
  });

  it('knows the namespace, hub and consumer group each trigger reads (for dead-letter names), from the settings', () => {
    const es = sinkDefinition('elasticsearchSink');
    expect(triggerOrigin({}, es)).toEqual({ namespace: undefined, eventHubName: 'cdc-events', consumerGroup: 'elasticsearch-sink' });
    expect(
      triggerOrigin({ EventHubConnection__fullyQualifiedNamespace: 'prod.servicebus.windows.net', CDC_TOPIC: 'hub2', ES_CONSUMER_GROUP: 'es2' }, es),
    ).toEqual({
      namespace: 'prod.servicebus.windows.net',
      eventHubName: 'hub2',
      consumerGroup: 'es2',
    });
    expect(eventHubNamespace({ EventHubConnection__fullyQualifiedNamespace: 'sb://prod.servicebus.windows.net/' })).toBe('prod.servicebus.windows.net');
    expect(eventHubNamespace({ EventHubConnection: 'Endpoint=sb://dev.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=secret' })).toBe(
      'dev.servicebus.windows.net',
    );
    expect(eventHubNamespace({ EventHubConnection: 'Endpoint=sb://localhost;SharedAccessKeyName=k;SharedAccessKey=x;UseDevelopmentEmulator=true;' })).toBe(
      'localhost',
    );
    expect(eventHubNamespace({ EventHubConnection: 'SharedAccessKey=secret' })).toBeUndefined();
  });

  it('registers one Event Hubs function per sink of the table, by its name', () => {
    const spy = jest.spyOn(app, 'eventHub').mockImplementation(() => undefined);
    try {
      registerSinks({});
      expect(spy.mock.calls.map(([name]) => name)).toEqual(['adxSink', 'elasticsearchSink', 'changeHistory']);
    } finally {
      spy.mockRestore();
    }
  });

  it('schedules the orders generator with a six-field NCRONTAB expression', () => {
    expect(String(ordersGeneratorOptions.schedule).split(' ')).toHaveLength(6);
  });
});
