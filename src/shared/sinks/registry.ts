/**
 * The table of sinks every host runs: each sink's name, its default consumer group (one per sink, or
 * they would compete for the same events; both from `names.ts`, which infra/ reads too) and how its
 * dependencies are built from the environment.
 * The Functions host (src/functions/host/registerSinks.ts) registers one Event Hubs function per
 * entry; a worker host runs the same entries from Kafka consumer groups.
 */
import { createAdxSinkFromEnv } from '../adx/adxSink.js';
import type { PointerResolver } from '../batch/pointers.js';
import type { Sink } from '../batch/types.js';
import { getList, getOptionalString, type Env } from '../core/env.js';
import { ConfigError } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import { deadLetterStoreFromEnv, pointerResolverFromEnv } from '../deadletter/blobDeadLetterStore.js';
import type { DeadLetterStore } from '../deadletter/types.js';
import { UNAVAILABLE_VALUE, type DebeziumInputOptions } from '../events/fromDebezium.js';
import { routerFromEnv } from '../routing/routes.js';
import { elasticsearchClientFromEnv } from '../elasticsearch/client.js';
import { elasticsearchSinkFromEnv } from '../elasticsearch/elasticsearchSink.js';
import { historySinkFromEnv } from '../history/historySink.js';
import { sinkNamed, type SinkName } from './names.js';

/** What running a sink needs: the sink, where poison records go, and how pointer events are read. */
export interface SinkDeps<T = unknown> {
  sink: Sink<T>;
  deadLetters: DeadLetterStore;
  /** Reads the full events behind pointer events (oversized events the reader put in a Blob). */
  pointers?: PointerResolver | undefined;
  /** How Debezium's own events are read (fromDebezium.ts). */
  debezium?: DebeziumInputOptions;
}

export interface SinkDefinition {
  /** Function name in the Functions host; also the sink's name in logs and dead-letter paths. */
  name: SinkName;
  /** Setting that overrides the consumer group, and the group used without it. */
  consumerGroupSetting: string;
  defaultConsumerGroup: string;
  /**
   * Builds the sink and its stores; throws `ConfigError` naming a missing or bad setting. `logger`
   * gets the lines of building it (the configuration, a deprecated setting), not the sink's writes.
   * `mode: 'replay'` (`npm run dlq:replay`): the Elasticsearch sink replaces a rejection marker at the
   * replayed event's own version (`versionType: 'external_gte'`); the other sinks are the same.
   */
  depsFromEnv(env: Env, logger?: Logger, mode?: 'replay'): SinkDeps;
}

/**
 * The sinks' side: `CDC_DEBEZIUM_UNAVAILABLE_VALUE_PLACEHOLDER` (the connector's
 * `unavailable.value.placeholder`, default Debezium's) and the key columns of `CDC_ROUTES`.
 */
export function debeziumInputFromEnv(env: Env): DebeziumInputOptions {
  const setting = 'CDC_DEBEZIUM_UNAVAILABLE_VALUE_PLACEHOLDER';
  const placeholder = getOptionalString(env, setting) ?? UNAVAILABLE_VALUE;
  if (placeholder === '') throw new ConfigError(setting, "the connector's unavailable.value.placeholder (not empty)", placeholder);
  const router = routerFromEnv(env);
  return {
    unavailableValuePlaceholder: placeholder,
    keyColumns: (schema, table) => {
      try {
        return router.route(schema, table).keys;
      } catch {
        // an unrouted table: the sink dead-letters it with its own reason
        return undefined;
      }
    },
  };
}

const stores = (env: Env) => ({ deadLetters: deadLetterStoreFromEnv(env), pointers: pointerResolverFromEnv(env), debezium: debeziumInputFromEnv(env) });

export const SINKS: readonly SinkDefinition[] = [
  {
    ...sinkNamed('adxSink'),
    depsFromEnv: (env, logger) => ({ sink: createAdxSinkFromEnv(env, logger ? { logger } : {}), ...stores(env) }),
  },
  {
    ...sinkNamed('elasticsearchSink'),
    depsFromEnv: (env, _logger, mode) => ({
      sink: elasticsearchSinkFromEnv(env, elasticsearchClientFromEnv(env), undefined, mode === 'replay' ? 'external_gte' : 'external'),
      ...stores(env),
    }),
  },
  {
    ...sinkNamed('changeHistory'),
    depsFromEnv: (env) => ({ sink: historySinkFromEnv(env, elasticsearchClientFromEnv(env)), ...stores(env) }),
  },
];

export function sinkDefinition(name: SinkDefinition['name']): SinkDefinition {
  const definition = SINKS.find((s) => s.name === name);
  if (definition === undefined) throw new Error(`no sink named ${name}`);
  return definition;
}

/**
 * Which sinks run: `WORKER_SINKS` (names of `SINKS`, any case), by default Elasticsearch and the
 * change history, plus ADX when it is configured (`ADX_CLUSTER_URL`): a process without ADX settings
 * should not fail for a sink nobody asked for, and one that names it gets the missing setting named.
 * The worker runs these; the status reports their consumer groups.
 */
export function enabledSinks(env: Env): SinkDefinition[] {
  const names = SINKS.map((s) => s.name);
  const defaults = SINKS.filter((s) => s.name !== 'adxSink' || getOptionalString(env, 'ADX_CLUSTER_URL') !== undefined).map((s) => s.name);
  const raw = getList(env, 'WORKER_SINKS', defaults);
  const chosen = raw.map((name) => {
    const definition = SINKS.find((s) => s.name.toLowerCase() === name.toLowerCase());
    if (definition === undefined)
      throw new ConfigError('WORKER_SINKS', `a comma-separated list of ${names.join(', ')}`, getOptionalString(env, 'WORKER_SINKS'));
    return definition;
  });
  if (chosen.length === 0) throw new ConfigError('WORKER_SINKS', `at least one of ${names.join(', ')}`, getOptionalString(env, 'WORKER_SINKS'));
  return SINKS.filter((s) => chosen.includes(s));
}
