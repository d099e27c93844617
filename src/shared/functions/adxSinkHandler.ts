import { createAdxSinkFromEnv } from '../adx/index.js';
import type { Env } from '../config/env.js';
import { deadLetterStoreFromEnv, pointerResolverFromEnv } from '../deadletter/blobDeadLetterStore.js';
import type { ChangeEvent } from '../events/changeEvent.js';
import { AdxBatchSink } from '../sinks/adxBatchSink.js';
import { createEventHubBatchHandler, lazy, type BatchHandlerDeps, type EventHubBatchHandler } from './eventHubBatchHandler.js';

export function adxDepsFromEnv(env: Env): BatchHandlerDeps<ChangeEvent> {
  return { sink: new AdxBatchSink(createAdxSinkFromEnv(env)), deadLetters: deadLetterStoreFromEnv(env), pointers: pointerResolverFromEnv(env) };
}

export const adxSinkHandler = (env: Env = process.env): EventHubBatchHandler => createEventHubBatchHandler(lazy(() => adxDepsFromEnv(env)));
