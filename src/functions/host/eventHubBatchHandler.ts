/**
 * The body of every Event Hubs function: positions from the trigger metadata, the batch core, a
 * report. Dependencies are built on first use (and again after a failure, see `lazy`), so a missing
 * setting fails the invocation naming the variable, and the retry policy holds the checkpoint until
 * the configuration is fixed.
 *
 * With telemetry (telemetry.ts), each invocation is one span, a child of the trace the host started
 * for the invocation (`context.traceContext`), and its report feeds the batch metrics; the lines the
 * handler logs meanwhile are in that span's context.
 */
import type { InvocationContext } from '@azure/functions';
import { context as otelContext, propagation, SpanKind, SpanStatusCode, type Attributes } from '@opentelemetry/api';
import { processBatch } from '../../shared/batch/processBatch.js';
import { SINK_ATTRIBUTE } from '../../shared/batch/metrics.js';
import type { BatchInfo, BatchReport } from '../../shared/batch/types.js';
import { describeError } from '../../shared/core/errors.js';
import type { Logger } from '../../shared/core/logger.js';
import type { SinkDeps } from '../../shared/sinks/registry.js';
import { fromTriggerMetadata, type TriggerOrigin } from './fromTriggerMetadata.js';
import { loggerFromContext } from './logger.js';
import type { FunctionsTelemetry } from './telemetry.js';

export type EventHubBatchHandler = (messages: unknown, context: InvocationContext) => Promise<BatchReport>;

/** `deps` gets the invocation's logger, for the lines it logs while building (configuration, deprecated settings). */
export function createEventHubBatchHandler<T>(
  deps: (logger: Logger) => Promise<SinkDeps<T>>,
  origin: TriggerOrigin = {},
  telemetry?: FunctionsTelemetry,
): EventHubBatchHandler {
  const run = async (messages: unknown, context: InvocationContext, onReport?: (report: BatchReport, batch: BatchInfo) => void): Promise<BatchReport> => {
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
    const { sink, deadLetters, pointers, debezium } = await deps(logger);
    return processBatch(records, {
      sink,
      deadLetters,
      batch,
      logger,
      ...(pointers ? { pointers } : {}),
      ...(debezium ? { debezium } : {}),
      ...(onReport ? { onReport: (report: BatchReport) => onReport(report, batch) } : {}),
    });
  };
  if (telemetry === undefined) return (messages, context) => run(messages, context);
  return (messages, context) => traced(telemetry, context, (onReport) => run(messages, context, onReport));
}

/**
 * Runs one invocation in a span named after the function, parented by the host's trace context of
 * the invocation (the instrumentation's preInvocation hook binds the same context; extracting it
 * here as well keeps the parent right where that hook does not run). The report, final before
 * processBatch throws for a retry, sets the span's counts and feeds the batch metrics.
 */
function traced(
  telemetry: FunctionsTelemetry,
  context: InvocationContext,
  body: (onReport: (report: BatchReport, batch: BatchInfo) => void) => Promise<BatchReport>,
): Promise<BatchReport> {
  const host = context.traceContext;
  const parent = host?.traceParent
    ? propagation.extract(otelContext.active(), { traceparent: host.traceParent, ...(host.traceState ? { tracestate: host.traceState } : {}) })
    : otelContext.active();
  const attributes: Attributes = {
    'faas.invocation_id': context.invocationId,
    'faas.name': context.functionName,
    'faas.trigger': 'pubsub',
    'messaging.system': 'eventhubs',
    [SINK_ATTRIBUTE]: context.functionName,
  };
  return telemetry.tracer.startActiveSpan(`${context.functionName} batch`, { kind: SpanKind.INTERNAL, attributes }, parent, async (span) => {
    const started = performance.now();
    const onReport = (report: BatchReport, batch: BatchInfo) => {
      span.setAttributes(reportAttributes(report, batch));
      telemetry.metrics.recordBatch({ sink: batch.functionName, report, durationMs: performance.now() - started });
    };
    try {
      const report = await body(onReport);
      span.setStatus({ code: SpanStatusCode.OK });
      return report;
    } catch (error) {
      // The class name as the exception type (OpenTelemetry would take our `code` property instead).
      const e = error instanceof Error ? error : new Error(describeError(error));
      span.recordException({ name: e.name, message: e.message, ...(e.stack ? { stack: e.stack } : {}) });
      span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(error) });
      throw error;
    } finally {
      span.end();
    }
  });
}

/** The batch's position and outcome counts (OpenTelemetry messaging names where there is one). */
function reportAttributes(report: BatchReport, batch: BatchInfo): Attributes {
  return {
    ...(batch.eventHubName ? { 'messaging.destination.name': batch.eventHubName } : {}),
    ...(batch.consumerGroup ? { 'messaging.consumer.group.name': batch.consumerGroup } : {}),
    'messaging.destination.partition.id': batch.partitionId,
    'messaging.batch.message_count': report.total,
    'cdc.batch.first_offset': batch.firstOffset,
    'cdc.batch.last_offset': batch.lastOffset,
    'cdc.batch.written': report.ok,
    'cdc.batch.skipped': report.skipped,
    'cdc.batch.dead_lettered': report.deadLettered,
    'cdc.batch.retried': report.retried,
  };
}
