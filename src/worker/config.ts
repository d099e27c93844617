/**
 * Worker configuration: every setting an environment variable, validated once at start-up; a bad
 * value stops the worker naming the variable (exit code 2). The Kafka connection is the reader's
 * (src/shared/core/kafka.ts), the sinks and their consumer groups are the Functions host's
 * (`SINKS`), the retry policy is the shared one; what is the worker's own is how it batches and stops.
 */
import { getInt, getOneOf, getString, type Env } from '../shared/core/env.js';
import { ConfigError } from '../shared/core/errors.js';
import { kafkaSettingsFromEnv, type KafkaSettings } from '../shared/core/kafka.js';
import type { LogLevel } from '../shared/core/logger.js';
import { enabledSinks, type SinkDefinition } from '../shared/sinks/registry.js';
import { retryPolicyFromEnv, type RetryPolicy } from '../shared/sinks/retryPolicy.js';

export interface WorkerSink {
  definition: SinkDefinition;
  /** `definition.consumerGroupSetting`, else the Functions consumer group name. */
  consumerGroup: string;
}

export interface WorkerConfig {
  kafka: KafkaSettings;
  topic: string;
  /** Host of the first broker: the `namespace` of every batch (an Event Hubs namespace's FQDN). */
  namespace: string;
  sinks: WorkerSink[];
  /** Most records per batch (host.json's `maxEventBatchSize`). */
  maxBatchSize: number;
  /**
   * Most bytes (record values and keys) per batch. The Functions host bounds a batch by count alone;
   * the worker also bounds it by size so that large events (Event Hubs allows 1 MB) cannot make a
   * batch, decoded and in flight on every partition of three sinks at once, outgrow the image's memory.
   */
  maxBatchBytes: number;
  /** Longest a batch's first record waits for the batch to fill (host.json's `maxWaitTime`). */
  maxWaitMs: number;
  retry: RetryPolicy;
  /**
   * How long SIGTERM waits for the batches in flight before abandoning them (uncommitted). Leaving
   * the group takes at most 5 s more, so the default stays inside the 30 s grace period Kubernetes
   * and Container Apps give a container.
   */
  shutdownTimeoutMs: number;
  sessionTimeoutMs: number;
  healthPort: number;
  logLevel: LogLevel;
}

/** host.json `extensions.eventHubs.maxEventBatchSize`: the same batches on both hosts. */
export const DEFAULT_MAX_BATCH_SIZE = 1000;
/** 4 MiB: 1,000 events of up to 4 KB pass whole; Elasticsearch's guidance is bulk requests of a few MB. */
export const DEFAULT_MAX_BATCH_BYTES = 4 * 1024 * 1024;

export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  const kafka = kafkaSettingsFromEnv(env, { clientId: 'pg-cdc-worker' });
  const sinks = enabledSinks(env).map((definition) => ({
    definition,
    consumerGroup: getString(env, definition.consumerGroupSetting, definition.defaultConsumerGroup),
  }));
  // Two sinks in one group would split the events between them instead of each getting all of them.
  sinks.forEach((sink, i) => {
    const other = sinks.slice(0, i).find((s) => s.consumerGroup === sink.consumerGroup);
    if (other) {
      throw new ConfigError(
        sink.definition.consumerGroupSetting,
        `a consumer group other than ${other.definition.name}'s (${other.definition.consumerGroupSetting}): every sink needs its own`,
        sink.consumerGroup,
      );
    }
  });
  const sessionTimeoutMs = getInt(env, 'KAFKA_SESSION_TIMEOUT_MS', 30_000, { min: 6_000, max: 300_000 });
  return {
    kafka,
    topic: getString(env, 'CDC_TOPIC', 'cdc-events'),
    namespace: kafka.brokers[0]!.replace(/:\d+$/, ''),
    sinks,
    maxBatchSize: getInt(env, 'WORKER_MAX_BATCH_SIZE', DEFAULT_MAX_BATCH_SIZE, { min: 1, max: 100_000 }),
    maxBatchBytes: getInt(env, 'WORKER_MAX_BATCH_BYTES', DEFAULT_MAX_BATCH_BYTES, { min: 1_024, max: 256 * 1024 * 1024 }),
    maxWaitMs: getInt(env, 'WORKER_MAX_WAIT_MS', 1_000, { min: 0, max: 300_000 }),
    retry: retryPolicyFromEnv(env),
    shutdownTimeoutMs: getInt(env, 'WORKER_SHUTDOWN_TIMEOUT_MS', 15_000, { min: 0, max: 600_000 }),
    sessionTimeoutMs,
    healthPort: getInt(env, 'HEALTH_PORT', 8080, { min: 0, max: 65535 }),
    logLevel: getOneOf(env, 'LOG_LEVEL', ['debug', 'info', 'warn', 'error'], 'info'),
  };
}

/** The values to mask in every log line (the sinks' credentials): one list for the worker and the sinks' scripts. */
export { secretsOf } from '../shared/sinks/secrets.js';
