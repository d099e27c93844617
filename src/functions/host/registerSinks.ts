/** The one registration point of the sink functions: one Event Hubs trigger per entry of `SINKS`. */
import { app } from '@azure/functions';
import type { Env } from '../../shared/core/env.js';
import { lazy } from '../../shared/core/lazy.js';
import type { Logger } from '../../shared/core/logger.js';
import { SINKS, type SinkDefinition } from '../../shared/sinks/registry.js';
import { createEventHubBatchHandler } from './eventHubBatchHandler.js';
import type { TriggerOrigin } from './fromTriggerMetadata.js';
import type { FunctionsTelemetry } from './telemetry.js';
import { BODY_DATA_TYPE, consumerGroup, EVENT_HUB_CONNECTION, eventHubName, eventHubNamespace, retryPolicy, type SinkTriggerOptions } from './settings.js';

/**
 * The trigger of one sink: batches of binary bodies, its own consumer group, retries that hold the
 * checkpoint; with `telemetry`, a span and the batch metrics per invocation.
 */
export function sinkTriggerOptions(definition: SinkDefinition, env: Env, telemetry?: FunctionsTelemetry): SinkTriggerOptions {
  return {
    connection: EVENT_HUB_CONNECTION,
    eventHubName: eventHubName(env),
    consumerGroup: consumerGroup(env, definition.consumerGroupSetting, definition.defaultConsumerGroup),
    cardinality: 'many',
    dataType: BODY_DATA_TYPE,
    retry: retryPolicy(env),
    // Built by the first invocation, which also logs what building reports (e.g. a deprecated setting);
    // the origin names dead-letters when partitionContext lacks the namespace, hub or consumer group.
    handler: createEventHubBatchHandler(
      lazy((logger: Logger) => definition.depsFromEnv(env, logger)),
      triggerOrigin(env, definition),
      telemetry,
    ),
  };
}

/** The namespace, hub and consumer group a sink's trigger reads, resolved from the settings. */
export function triggerOrigin(env: Env, definition: SinkDefinition): TriggerOrigin {
  return {
    namespace: eventHubNamespace(env),
    eventHubName: env.CDC_TOPIC ?? 'cdc-events',
    consumerGroup: env[definition.consumerGroupSetting] ?? definition.defaultConsumerGroup,
  };
}

export function registerSinks(env: Env, sinks: readonly SinkDefinition[] = SINKS, telemetry?: FunctionsTelemetry): void {
  for (const definition of sinks) app.eventHub(definition.name, sinkTriggerOptions(definition, env, telemetry));
}
