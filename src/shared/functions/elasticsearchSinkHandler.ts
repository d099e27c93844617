import type { Env } from '../config/env.js';
import { deadLetterStoreFromEnv, pointerResolverFromEnv } from '../deadletter/blobDeadLetterStore.js';
import { elasticsearchClientFromEnv } from '../elasticsearch/client.js';
import { elasticsearchSinkFromEnv, type ElasticsearchItem } from '../elasticsearch/elasticsearchSink.js';
import { createEventHubBatchHandler, lazy, type BatchHandlerDeps, type EventHubBatchHandler } from './eventHubBatchHandler.js';

export function elasticsearchDepsFromEnv(env: Env): BatchHandlerDeps<ElasticsearchItem> {
  return {
    sink: elasticsearchSinkFromEnv(env, elasticsearchClientFromEnv(env)),
    deadLetters: deadLetterStoreFromEnv(env),
    pointers: pointerResolverFromEnv(env),
  };
}

export function createElasticsearchSinkHandler(deps: () => Promise<BatchHandlerDeps<ElasticsearchItem>>): EventHubBatchHandler {
  return createEventHubBatchHandler(deps);
}

export const elasticsearchSinkHandler = (env: Env = process.env): EventHubBatchHandler =>
  createElasticsearchSinkHandler(lazy(() => elasticsearchDepsFromEnv(env)));
