/**
 * Factories for change events and for batches shaped exactly as the Event Hubs trigger
 * (`cardinality: 'many'`) delivers them to a Node.js v4 handler.
 */
import { InvocationContext, type LogHandler } from '@azure/functions';
import type { ChangeEvent, ChangeOp, RowImage } from '../../src/shared/events/changeEvent.js';

let nextLsn = 100_000;

export interface EventInit {
  table?: string;
  op?: ChangeOp;
  before?: RowImage | null;
  after?: RowImage | null;
  key?: RowImage | null;
  lsn?: number | null;
  tsMs?: number;
}

/** A change event as the reader emits it (Debezium envelope plus `key`). */
export function changeEvent(init: EventInit = {}): ChangeEvent {
  const [schema = 'retail', table = 'orders_info'] = (init.table ?? 'retail.orders_info').split('.');
  const op = init.op ?? 'c';
  const lsn = init.lsn === undefined ? (nextLsn += 8) : init.lsn;
  const tsMs = init.tsMs ?? 1_700_000_000_000;
  return {
    before: init.before ?? null,
    after: init.after ?? (op === 'd' || op === 't' ? null : { orderid: 1, custid: 306, amount: 183, city: 'Austin', purchase_time: '2020-10-09 07:23:10' }),
    source: {
      version: '0.1.0',
      connector: 'postgresql',
      name: 'pgcdc',
      ts_ms: tsMs,
      snapshot: op === 'r' ? 'true' : 'false',
      db: 'postgres',
      schema,
      table,
      txId: 653,
      lsn,
      sequence: null,
    },
    op,
    ts_ms: tsMs + 5,
    key: init.key === undefined ? (op === 't' ? null : { orderid: (init.after ?? init.before)?.orderid ?? 1 }) : init.key,
    transaction: null,
  };
}

export const order = (orderid: number, fields: Partial<{ custid: number; amount: number; city: string; purchase_time: string }> = {}): RowImage => ({
  orderid,
  custid: fields.custid ?? 306,
  amount: fields.amount ?? 183,
  city: fields.city ?? 'Austin',
  purchase_time: fields.purchase_time ?? '2020-10-09 07:23:10',
});

export type BodyShape = 'object' | 'string' | 'buffer' | 'schemaPayload';

/** How the host hands a JSON event over: parsed object, string, Buffer, or Debezium's {schema,payload}. */
export function hostBody(event: unknown, shape: BodyShape = 'object'): unknown {
  switch (shape) {
    case 'object':
      return JSON.parse(JSON.stringify(event)) as unknown;
    case 'string':
      return JSON.stringify(event);
    case 'buffer':
      return Buffer.from(JSON.stringify(event), 'utf8');
    case 'schemaPayload':
      return JSON.parse(JSON.stringify({ schema: { type: 'struct', fields: [] }, payload: event })) as unknown;
  }
}

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
