/**
 * The body of every Event Hubs function: positions from the trigger metadata, the batch core, a
 * report. Dependencies are built on first use (and again after a failure), so a missing setting
 * fails the invocation naming the variable, and the retry policy holds the checkpoint until the
 * configuration is fixed.
 */
import type { InvocationContext } from '@azure/functions';
import { processBatch } from '../batch/processBatch.js';
import type { PointerResolver } from '../batch/pointers.js';
import type { BatchReport, Sink } from '../batch/types.js';
import type { DeadLetterStore } from '../deadletter/types.js';
import { fromTriggerMetadata } from '../eventhub/fromTriggerMetadata.js';
import { loggerFromContext } from '../logger.js';

export interface BatchHandlerDeps<T> {
  sink: Sink<T>;
  deadLetters: DeadLetterStore;
  /** Reads the full events behind pointer events (oversized events the reader put in a Blob). */
  pointers?: PointerResolver;
}

export type EventHubBatchHandler = (messages: unknown, context: InvocationContext) => Promise<BatchReport>;

/** Memoises an async factory; forgets a failed attempt so the next invocation tries again. */
export function lazy<T>(factory: () => T | Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    value ??= Promise.resolve()
      .then(factory)
      .catch((error: unknown) => {
        value = undefined;
        throw error;
      });
    return value;
  };
}

export function createEventHubBatchHandler<T>(deps: () => Promise<BatchHandlerDeps<T>>): EventHubBatchHandler {
  return async (messages, context) => {
    const { records, batch } = fromTriggerMetadata(messages, context);
    const logger = loggerFromContext(context);
    const retry = context.retryContext;
    if (retry && retry.retryCount > 0) {
      logger.warn(
        `${batch.functionName}: retry ${retry.retryCount} of partition ${batch.partitionId} offsets ${batch.firstOffset}..${batch.lastOffset} (the checkpoint waits until it succeeds)`,
      );
    }
    const { sink, deadLetters, pointers } = await deps();
    return processBatch(records, { sink, deadLetters, batch, logger, ...(pointers ? { pointers } : {}) });
  };
}
