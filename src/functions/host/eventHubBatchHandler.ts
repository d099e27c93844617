/**
 * The body of every Event Hubs function: positions from the trigger metadata, the batch core, a
 * report. Dependencies are built on first use (and again after a failure, see `lazy`), so a missing
 * setting fails the invocation naming the variable, and the retry policy holds the checkpoint until
 * the configuration is fixed.
 */
import type { InvocationContext } from '@azure/functions';
import { processBatch } from '../../shared/batch/processBatch.js';
import type { BatchReport } from '../../shared/batch/types.js';
import type { Logger } from '../../shared/core/logger.js';
import type { SinkDeps } from '../../shared/sinks/registry.js';
import { fromTriggerMetadata, type TriggerOrigin } from './fromTriggerMetadata.js';
import { loggerFromContext } from './logger.js';

export type EventHubBatchHandler = (messages: unknown, context: InvocationContext) => Promise<BatchReport>;

/** `deps` gets the invocation's logger, for the lines it logs while building (configuration, deprecated settings). */
export function createEventHubBatchHandler<T>(deps: (logger: Logger) => Promise<SinkDeps<T>>, origin: TriggerOrigin = {}): EventHubBatchHandler {
  return async (messages, context) => {
    const { records, batch, unplaced } = fromTriggerMetadata(messages, context, origin);
    const logger = loggerFromContext(context);
    if (unplaced > 0) {
      logger.warn(
        `${batch.functionName}: ${unplaced} of ${records.length} records of partition ${batch.partitionId} have no offset, sequence number or ` +
          `enqueued time in the trigger metadata; their dead-letters are named by invocation id and index (unplaced/${context.invocationId}-<i>), ` +
          'so a retried invocation may store them again',
      );
    }
    const retry = context.retryContext;
    if (retry && retry.retryCount > 0) {
      logger.warn(
        `${batch.functionName}: retry ${retry.retryCount} of partition ${batch.partitionId} offsets ${batch.firstOffset}..${batch.lastOffset} ` +
          '(the checkpoint waits until it succeeds)',
      );
    }
    const { sink, deadLetters, pointers } = await deps(logger);
    return processBatch(records, { sink, deadLetters, batch, logger, ...(pointers ? { pointers } : {}) });
  };
}
