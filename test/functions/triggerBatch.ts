/**
 * Batches shaped exactly as the Event Hubs trigger (`cardinality: 'many'`) delivers them to a
 * Node.js v4 handler (the events themselves come from test/helpers/events.ts).
 */
import { InvocationContext, type LogHandler, type TraceContext } from '@azure/functions';

export interface TriggerOptions {
  partitionId?: string;
  firstOffset?: number;
  firstSequenceNumber?: number;
  functionName?: string;
  consumerGroup?: string;
  logHandler?: LogHandler;
  /** Set on a re-run by the retry policy. */
  retryCount?: number;
  /** Enqueued time of the first event, ms (a recreated hub enqueues offset 0 again, later). */
  firstEnqueuedMs?: number;
  invocationId?: string;
  /** The W3C trace context the host started for the invocation. */
  traceContext?: TraceContext;
}

/**
 * The handler's two arguments for a batch: the bodies array and an `InvocationContext` whose
 * `triggerMetadata` has the host's shape after the library's camel-casing (numeric offsets arrive as
 * numbers because the library `JSON.parse`s string metadata).
 */
export function triggerBatch(bodies: unknown[], options: TriggerOptions = {}): { messages: unknown[]; context: InvocationContext; logs: string[] } {
  const firstOffset = options.firstOffset ?? 4096;
  const firstSeq = options.firstSequenceNumber ?? 17;
  const logs: string[] = [];
  const context = new InvocationContext({
    invocationId: options.invocationId ?? `inv-${firstOffset}`,
    functionName: options.functionName ?? 'elasticsearchSink',
    logHandler: options.logHandler ?? ((level, ...args) => logs.push(`${level}: ${args.map(String).join(' ')}`)),
    ...(options.traceContext ? { traceContext: options.traceContext } : {}),
    ...(options.retryCount === undefined ? {} : { retryContext: { retryCount: options.retryCount, maxRetryCount: -1 } }),
    triggerMetadata: {
      partitionContext: {
        consumerGroup: options.consumerGroup ?? 'elasticsearch-sink',
        eventHubName: 'pgcdc',
        fullyQualifiedNamespace: 'test.servicebus.windows.net',
        partitionId: options.partitionId ?? '0',
      },
      offsetArray: bodies.map((_, i) => firstOffset + i * 512),
      sequenceNumberArray: bodies.map((_, i) => firstSeq + i),
      enqueuedTimeUtcArray: bodies.map((_, i) => new Date((options.firstEnqueuedMs ?? 1_700_000_000_000) + i).toISOString()),
      partitionKeyArray: bodies.map(() => null),
      propertiesArray: bodies.map(() => ({})),
      systemPropertiesArray: bodies.map((_, i) => ({ sequenceNumber: firstSeq + i, offset: String(firstOffset + i * 512) })),
    },
  });
  return { messages: bodies, context, logs };
}
