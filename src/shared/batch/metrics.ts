/**
 * The sinks' metrics, host-independent: every host (the Functions app, the worker) hands each
 * batch's `BatchReport` (from processBatch) and its duration to a `BatchMetrics`. The OpenTelemetry
 * implementation records on a `Meter` from `@opentelemetry/api`; which SDK and exporter stand behind
 * it (Application Insights in the Functions app) is the host's business. Without telemetry the hosts
 * pass nothing and nothing is recorded.
 *
 * Names follow the reader's (`cdc.reader.*`, src/reader/otel.ts): `cdc.<component>.<what>[.<unit>]`,
 * so one workbook queries `customMetrics | where name startswith "cdc."` for both.
 */
import type { Attributes, Meter } from '@opentelemetry/api';
import type { BatchReport } from './types.js';

/** Metric names (also the names in Application Insights `customMetrics`). */
export const SINK_METRIC_NAMES = {
  eventsIn: 'cdc.sink.events.in',
  eventsWritten: 'cdc.sink.events.written',
  eventsSkipped: 'cdc.sink.events.skipped',
  eventsDeadLettered: 'cdc.sink.events.deadlettered',
  eventsRetried: 'cdc.sink.events.retried',
  batchDurationMs: 'cdc.sink.batch.duration.ms',
  commitToWriteMs: 'cdc.sink.commit_to_write.ms',
} as const;

/** The attribute naming the sink on every data point (`adxSink`, `elasticsearchSink`, `changeHistory`). */
export const SINK_ATTRIBUTE = 'cdc.sink';

export interface BatchObservation {
  /** The sink's name (its function name in the Functions app). */
  sink: string;
  report: BatchReport;
  /** Wall time of the whole batch: decoding, pointer fetches, the write and the dead-letters. */
  durationMs: number;
}

export interface BatchMetrics {
  /** Records one batch, including one whose records must be retried (its report is final by then). */
  recordBatch(observation: BatchObservation): void;
}

/** Instruments on `meter`: five counters ({event}) and two histograms (ms), each point with `cdc.sink`. */
export function otelBatchMetrics(meter: Meter): BatchMetrics {
  const counter = (name: string, description: string) => meter.createCounter(name, { description, unit: '{event}' });
  const eventsIn = counter(SINK_METRIC_NAMES.eventsIn, 'Events delivered to the sink in a batch');
  const written = counter(SINK_METRIC_NAMES.eventsWritten, 'Events the sink wrote (or found already written: duplicates and stale versions)');
  const skipped = counter(SINK_METRIC_NAMES.eventsSkipped, 'Events with nothing to write for this sink (tombstones, heartbeats, not routed here)');
  const deadLettered = counter(SINK_METRIC_NAMES.eventsDeadLettered, 'Events stored in the dead-letter container (they can never succeed as they are)');
  const retried = counter(SINK_METRIC_NAMES.eventsRetried, 'Events whose batch failed so that the host retries it (transient sink failures)');
  const duration = meter.createHistogram(SINK_METRIC_NAMES.batchDurationMs, { description: 'Duration of one batch, decode to dead-letters', unit: 'ms' });
  const latency = meter.createHistogram(SINK_METRIC_NAMES.commitToWriteMs, {
    description: 'Commit time in PostgreSQL to the sink having written the event (ADX: ingestion accepted)',
    unit: 'ms',
  });
  return {
    recordBatch({ sink, report, durationMs }) {
      const attributes: Attributes = { [SINK_ATTRIBUTE]: sink };
      eventsIn.add(report.total, attributes);
      written.add(report.ok, attributes);
      skipped.add(report.skipped, attributes);
      deadLettered.add(report.deadLettered, attributes);
      retried.add(report.retried, attributes);
      duration.record(durationMs, attributes);
      // A commit clock ahead of this host's would give negative values: clamp, the histogram has no sign.
      for (const ms of report.commitToWriteMs) latency.record(Math.max(0, ms), attributes);
    },
  };
}
