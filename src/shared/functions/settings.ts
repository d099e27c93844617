/**
 * Settings read when the functions are registered (host start-up). Names in `%...%` are resolved by
 * the Functions host from app settings at run time.
 */
import type { ExponentialBackoffRetryOptions } from '@azure/functions';
import { getInt, type Env } from '../config/env.js';

/** Name of the connection setting prefix: `EventHubConnection` (connection string) or `EventHubConnection__fullyQualifiedNamespace` (identity). */
export const EVENT_HUB_CONNECTION = 'EventHubConnection';
/**
 * The event hub carrying the change events: `CDC_TOPIC`, the same setting the reader publishes to
 * (one Kafka topic = one event hub), default `cdc-events`.
 */
export function eventHubName(env: Env): string {
  return env.CDC_TOPIC === undefined ? 'cdc-events' : '%CDC_TOPIC%';
}

/** Unbounded exponential backoff: a failing batch holds its partition's checkpoint until it succeeds. */
export function retryPolicy(env: Env): ExponentialBackoffRetryOptions {
  return {
    strategy: 'exponentialBackoff',
    maxRetryCount: -1,
    minimumInterval: { seconds: getInt(env, 'CDC_RETRY_MIN_INTERVAL_SECONDS', 5, { min: 1 }) },
    maximumInterval: { seconds: getInt(env, 'CDC_RETRY_MAX_INTERVAL_SECONDS', 900, { min: 1 }) },
  };
}

/** Consumer group of a function: `%<SETTING>%` if the setting exists, else the default name. */
export function consumerGroup(env: Env, setting: string, defaultName: string): string {
  return env[setting] === undefined ? defaultName : `%${setting}%`;
}

