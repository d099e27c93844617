/**
 * Settings read when the functions are registered (host start-up). Names in `%...%` are resolved by
 * the Functions host from app settings at run time.
 */
import type { EventHubFunctionOptions, ExponentialBackoffRetryOptions } from '@azure/functions';
import type { Env } from '../../shared/core/env.js';
import { retryPolicyFromEnv } from '../../shared/sinks/retryPolicy.js';

// The connection setting and its namespace live in the plumbing core: the status of the hub reads them too.
export { EVENT_HUB_CONNECTION, eventHubNamespace } from '../../shared/core/eventHubs.js';

/**
 * The event hub carrying the change events: `CDC_TOPIC`, the same setting the reader publishes to
 * (one Kafka topic = one event hub), default `cdc-events`.
 */
export function eventHubName(env: Env): string {
  return env.CDC_TOPIC === undefined ? 'cdc-events' : '%CDC_TOPIC%';
}

/**
 * The shared retry policy (src/shared/sinks/retryPolicy.ts) as the runtime's unbounded exponential
 * backoff: a failing batch holds its partition's checkpoint until it succeeds.
 */
export function retryPolicy(env: Env): ExponentialBackoffRetryOptions {
  const policy = retryPolicyFromEnv(env);
  return {
    strategy: 'exponentialBackoff',
    maxRetryCount: -1,
    minimumInterval: { seconds: policy.minIntervalSeconds },
    maximumInterval: { seconds: policy.maxIntervalSeconds },
  };
}

/** Consumer group of a function: `%<SETTING>%` if the setting exists, else the default name. */
export function consumerGroup(env: Env, setting: string, defaultName: string): string {
  return env[setting] === undefined ? defaultName : `%${setting}%`;
}

/**
 * Event Hubs trigger options plus `dataType`, which the host honours but the library's types omit
 * (azure-functions-nodejs-library#187, #340; the library copies unknown trigger options into the
 * binding). Without it, with `cardinality: 'many'` the host binds bodies through Json.NET and one
 * non-JSON event fails the whole batch before our code runs — with an unbounded retry policy that
 * stalls the partition forever. `binary` hands every body over as a Buffer with its original bytes
 * (kept exact in the dead-letter store); `decodeBody` parses it.
 */
export type SinkTriggerOptions = EventHubFunctionOptions & { dataType: 'binary' | 'string' };

export const BODY_DATA_TYPE = 'binary' as const;
