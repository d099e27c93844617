import type { Env } from '../config/env.js';
import { deadLetterStoreFromEnv, pointerResolverFromEnv } from '../deadletter/blobDeadLetterStore.js';
import { elasticsearchClientFromEnv } from '../elasticsearch/client.js';
import { historySinkFromEnv } from '../history/historySink.js';
import type { HistoryRow } from '../history/pivot.js';
import { createEventHubBatchHandler, lazy, type BatchHandlerDeps, type EventHubBatchHandler } from './eventHubBatchHandler.js';

export function changeHistoryDepsFromEnv(env: Env): BatchHandlerDeps<HistoryRow[]> {
  return { sink: historySinkFromEnv(env, elasticsearchClientFromEnv(env)), deadLetters: deadLetterStoreFromEnv(env), pointers: pointerResolverFromEnv(env) };
}

export const changeHistoryHandler = (env: Env = process.env): EventHubBatchHandler => createEventHubBatchHandler(lazy(() => changeHistoryDepsFromEnv(env)));
