import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../src/shared/core/errors.js';
import { SINKS } from '../../src/shared/sinks/registry.js';
import { loadWorkerConfig, secretsOf } from '../../src/worker/config.js';

const base = { KAFKA_BROKERS: 'kafka-1:9092,kafka-2:9092' };
const hostJson = JSON.parse(readFileSync(new URL('../../host.json', import.meta.url), 'utf8')) as { extensions: { eventHubs: { maxEventBatchSize: number } } };

function variableOf(env: Record<string, string>): string {
  try {
    loadWorkerConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.variable;
    throw error;
  }
  throw new Error('no ConfigError');
}

describe('worker configuration', () => {
  it("defaults: Elasticsearch and the change history under the Functions consumer groups, host.json's batch size, the shared retry policy", () => {
    const config = loadWorkerConfig(base);
    expect(config.sinks.map((s) => [s.definition.name, s.consumerGroup])).toEqual([
      ['elasticsearchSink', 'elasticsearch-sink'],
      ['changeHistory', 'change-history'],
    ]);
    expect(config).toMatchObject({
      topic: 'cdc-events',
      namespace: 'kafka-1',
      maxBatchSize: hostJson.extensions.eventHubs.maxEventBatchSize,
      maxBatchBytes: 4 * 1024 * 1024,
      maxWaitMs: 1000,
      retry: { minIntervalSeconds: 5, maxIntervalSeconds: 900 },
      shutdownTimeoutMs: 15_000,
      sessionTimeoutMs: 30_000,
      healthPort: 8080,
      kafka: { brokers: ['kafka-1:9092', 'kafka-2:9092'], clientId: 'pg-cdc-worker', securityProtocol: 'PLAINTEXT' },
    });
  });

  it('runs ADX too when it is configured, and whatever WORKER_SINKS names (any case), each in its own group', () => {
    expect(loadWorkerConfig({ ...base, ADX_CLUSTER_URL: 'https://c.kusto.windows.net' }).sinks.map((s) => s.consumerGroup)).toEqual([
      'adx-sink',
      'elasticsearch-sink',
      'change-history',
    ]);
    const chosen = loadWorkerConfig({ ...base, WORKER_SINKS: 'CHANGEHISTORY, adxsink', HISTORY_CONSUMER_GROUP: 'history-2', CDC_TOPIC: 'hub2' });
    expect(chosen.sinks.map((s) => [s.definition.name, s.consumerGroup])).toEqual([
      ['adxSink', 'adx-sink'],
      ['changeHistory', 'history-2'],
    ]);
    expect(chosen.topic).toBe('hub2');
    expect(SINKS.map((s) => s.name)).toEqual(['adxSink', 'elasticsearchSink', 'changeHistory']);
  });

  it('Event Hubs: the namespace of the connection string names the batches, and its key is a secret', () => {
    const cs = 'Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=listen;SharedAccessKey=c2VjcmV0';
    const env = { EVENTHUBS_CONNECTION_STRING: cs, ELASTICSEARCH_API_KEY: 'es-key-value' };
    expect(loadWorkerConfig(env)).toMatchObject({ namespace: 'myns.servicebus.windows.net', kafka: { securityProtocol: 'SASL_SSL', saslPassword: cs } });
    expect(secretsOf(env).sort()).toEqual([cs, 'es-key-value'].sort());
  });

  it.each([
    [{}, 'KAFKA_BROKERS'],
    [{ ...base, WORKER_SINKS: 'elasticsearchSink,solr' }, 'WORKER_SINKS'],
    [{ ...base, WORKER_SINKS: ' , ' }, 'WORKER_SINKS'],
    [{ ...base, HISTORY_CONSUMER_GROUP: 'elasticsearch-sink' }, 'HISTORY_CONSUMER_GROUP'],
    [{ ...base, WORKER_MAX_BATCH_SIZE: '0' }, 'WORKER_MAX_BATCH_SIZE'],
    [{ ...base, WORKER_MAX_BATCH_BYTES: '100' }, 'WORKER_MAX_BATCH_BYTES'],
    [{ ...base, WORKER_MAX_WAIT_MS: '5s' }, 'WORKER_MAX_WAIT_MS'],
    [{ ...base, WORKER_SHUTDOWN_TIMEOUT_MS: '-1' }, 'WORKER_SHUTDOWN_TIMEOUT_MS'],
    [{ ...base, KAFKA_SESSION_TIMEOUT_MS: '1000' }, 'KAFKA_SESSION_TIMEOUT_MS'],
    [{ ...base, CDC_RETRY_MIN_INTERVAL_SECONDS: '60', CDC_RETRY_MAX_INTERVAL_SECONDS: '30' }, 'CDC_RETRY_MAX_INTERVAL_SECONDS'],
    [{ ...base, KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' }, 'KAFKA_SASL_PASSWORD'],
  ])('%j is refused naming %s', (env, variable) => {
    expect(variableOf(env)).toBe(variable);
  });
});
