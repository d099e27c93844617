/**
 * The Azure Monitor side: a workbook and log alert rules on Application Insights, whose tables hold
 * the OpenTelemetry metrics (`customMetrics`) of the reader (names of src/reader/otel.ts METRIC_NAMES)
 * and of the sink functions (src/shared/batch/metrics.ts SINK_METRIC_NAMES, imported: one source of
 * truth), and the Functions host's invocations (`requests`) and exceptions.
 *
 * How the Azure Monitor exporter (@azure/monitor-opentelemetry-exporter, utils/metricUtils.ts) writes
 * a data point: one `customMetrics` row per metric, attribute set and export interval (60 s by
 * default), the attributes as `customDimensions` keys as they are (`customDimensions["cdc.sink"]`).
 * Counters are exported as deltas: `valueSum` (= `value`) is what was added in the interval,
 * `valueCount` is 1. A histogram's row has `valueCount`, `valueSum`, `valueMin` and `valueMax` and
 * no buckets, so means and maxima are exact and percentiles of single events cannot be computed
 * (the latency tile's percentiles are of per-interval means, and say so).
 */
import * as applicationinsights from '@pulumi/azure-native/applicationinsights/index.js';
import * as monitor from '@pulumi/azure-native/monitor/index.js';
import type * as pulumi from '@pulumi/pulumi';
import { createHash } from 'node:crypto';
import { SINK_ATTRIBUTE, SINK_METRIC_NAMES } from '../src/shared/batch/metrics.js';
import { SINK_NAMES } from '../src/shared/sinks/names.js';

/** The reader's metric names (src/reader/otel.ts METRIC_NAMES, kept as they are; the test compares). */
export const READER_METRICS = {
  changes: 'cdc.reader.changes',
  changesPerSec: 'cdc.reader.changes.rate',
  slotLagBytes: 'cdc.reader.slot.lag.bytes',
  slotLagSeconds: 'cdc.reader.slot.lag.seconds',
  commitToAckMs: 'cdc.reader.commit_to_ack.ms',
  inflightBytes: 'cdc.reader.inflight.bytes',
  ready: 'cdc.reader.ready',
} as const;

const sinkList = SINK_NAMES.map((s) => `"${s.name}"`).join(', ');
const M = SINK_METRIC_NAMES;

/** Rows of the sinks' metrics `names`, with the sink (the `cdc.sink` attribute) as column `sink`. */
export function sinkMetrics(...names: string[]): string {
  const filter = names.length === 1 ? `name == "${names[0]}"` : `name in (${names.map((n) => `"${n}"`).join(', ')})`;
  return `customMetrics
| where ${filter}
| extend sink = tostring(customDimensions["${SINK_ATTRIBUTE}"])
| where sink in (${sinkList})`;
}

export interface AlertDefinition {
  name: string;
  displayName: string;
  description: string;
  severity: number;
  /** ISO 8601 durations. */
  evaluationFrequency: string;
  windowSize: string;
  query: string;
  metricMeasureColumn: string;
  dimensions: string[];
  threshold: number;
}

export interface AlertThresholds {
  slotLagBytes: number;
  slotLagSeconds: number;
  sinkStallMinutes: number;
}

const slotMetric = (metric: string, column: string) => `customMetrics
| where name == "${metric}"
| extend slot = tostring(customDimensions["cdc.slot"])
| summarize ${column} = max(value) by slot`;

/** The alert rules (log alerts on the Application Insights resource). */
export function alertDefinitions(t: AlertThresholds): AlertDefinition[] {
  return [
    {
      name: 'slot-lag-bytes',
      displayName: 'CDC: replication slot lag (bytes)',
      description: `WAL the slot holds back (pg_current_wal_lsn() - confirmed_flush_lsn) above ${t.slotLagBytes} bytes: the reader is behind or stalled, and the server keeps WAL for it`,
      severity: 2,
      evaluationFrequency: 'PT5M',
      windowSize: 'PT15M',
      query: slotMetric(READER_METRICS.slotLagBytes, 'lagBytes'),
      metricMeasureColumn: 'lagBytes',
      dimensions: ['slot'],
      threshold: t.slotLagBytes,
    },
    {
      name: 'slot-lag-seconds',
      displayName: 'CDC: replication slot lag (seconds)',
      description: `The oldest commit not yet acknowledged by Event Hubs is older than ${t.slotLagSeconds} s`,
      severity: 2,
      evaluationFrequency: 'PT5M',
      windowSize: 'PT15M',
      query: slotMetric(READER_METRICS.slotLagSeconds, 'lagSeconds'),
      metricMeasureColumn: 'lagSeconds',
      dimensions: ['slot'],
      threshold: t.slotLagSeconds,
    },
    {
      name: 'sink-stalled',
      displayName: 'CDC: a sink is not consuming',
      description:
        `The reader published changes in the last ${t.sinkStallMinutes} minutes and a sink finished none of the events delivered to it in that time ` +
        `(${M.eventsIn} less ${M.eventsRetried} is 0: no batch arrived, or every batch failed and is retried), so its consumer lag grows.`,
      severity: 2,
      evaluationFrequency: 'PT5M',
      windowSize: `PT${t.sinkStallMinutes}M`,
      // A batch that fails is delivered again: its events count in `in` and in `retried`, and only
      // the events of batches that completed (written, skipped or dead-lettered) are progress.
      query: `let published = toscalar(customMetrics | where name == "${READER_METRICS.changes}" | summarize sum(valueSum));
let finished = ${sinkMetrics(M.eventsIn, M.eventsRetried).replace(/\n/g, '\n  ')}
  | summarize finished = sumif(valueSum, name == "${M.eventsIn}") - sumif(valueSum, name == "${M.eventsRetried}") by sink;
datatable(sink:string) [${sinkList}]
| join kind=leftouter finished on sink
| extend stalled = iff(coalesce(published, 0.0) > 0 and coalesce(finished, 0.0) <= 0, 1, 0)
| project sink, stalled`,
      metricMeasureColumn: 'stalled',
      dimensions: ['sink'],
      threshold: 0,
    },
    {
      name: 'dead-letters',
      displayName: 'CDC: records dead-lettered',
      description: `A sink dead-lettered records in the last 15 minutes (${M.eventsDeadLettered}; npm run verify lists them, npm run dlq:replay re-applies them once fixed)`,
      severity: 2,
      evaluationFrequency: 'PT5M',
      windowSize: 'PT15M',
      query: `${sinkMetrics(M.eventsDeadLettered)}
| summarize deadLettered = sum(valueSum) by sink`,
      metricMeasureColumn: 'deadLettered',
      dimensions: ['sink'],
      threshold: 0,
    },
    {
      name: 'reader-not-ready',
      displayName: 'CDC: the reader is not ready',
      description: 'The reader reported not ready (not streaming, or the broker unreachable), or reported nothing, in the last 10 minutes',
      severity: 1,
      evaluationFrequency: 'PT5M',
      windowSize: 'PT10M',
      query: `customMetrics
| where name == "${READER_METRICS.ready}"
| summarize ready = min(value)
| extend notReady = iff(isnull(ready), 1.0, 1.0 - ready)
| project notReady`,
      metricMeasureColumn: 'notReady',
      dimensions: [],
      threshold: 0,
    },
    {
      name: 'function-failures',
      displayName: 'CDC: Functions invocations failed',
      description: 'Invocations of the Functions app failed in the last 15 minutes (a failed sink batch is retried and holds its partition)',
      severity: 2,
      evaluationFrequency: 'PT5M',
      windowSize: 'PT15M',
      query: `requests
| where success == false
| summarize failures = count() by functionName = operation_Name`,
      metricMeasureColumn: 'failures',
      dimensions: ['functionName'],
      threshold: 0,
    },
  ];
}

/** A workbook item: markdown (type 1) or a KQL query (type 3), in the shape of Microsoft's workbook schema. */
export type WorkbookItem =
  | { type: 1; name: string; content: { json: string } }
  | {
      type: 3;
      name: string;
      customWidth?: string;
      content: {
        version: 'KqlItem/1.0';
        query: string;
        size: 0;
        title: string;
        timeContext: { durationMs: number };
        queryType: 0;
        resourceType: 'microsoft.insights/components';
        visualization: 'timechart' | 'table' | 'barchart' | 'tiles';
      };
    };

export interface Workbook {
  version: 'Notebook/1.0';
  items: WorkbookItem[];
  fallbackResourceIds: string[];
  $schema: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

function query(name: string, title: string, kql: string, visualization: 'timechart' | 'table' | 'barchart' | 'tiles', customWidth = '50'): WorkbookItem {
  return {
    type: 3,
    name,
    customWidth,
    content: {
      version: 'KqlItem/1.0',
      query: kql,
      size: 0,
      title,
      timeContext: { durationMs: DAY_MS },
      queryType: 0,
      resourceType: 'microsoft.insights/components',
      visualization,
    },
  };
}

const readerSeries = (metric: string, aggregate: string, alias: string) => `customMetrics
| where name == "${metric}"
| summarize ${alias} = ${aggregate} by bin(timestamp, 5m), slot = tostring(customDimensions["cdc.slot"])
| render timechart`;

/** The workbook: the reader (slot lag, throughput, latency, readiness), the sinks (events, outcomes, dead letters, commit-to-write latency), the Functions host (failures, durations). */
export function workbook(appInsightsId: string): Workbook {
  return {
    version: 'Notebook/1.0',
    items: [
      {
        type: 1,
        name: 'intro',
        content: {
          json:
            '## CDC pipeline\nThe reader (PostgreSQL → Event Hubs) and the sinks (Event Hubs → ADX, Elasticsearch, change history). ' +
            'Reader and sink figures are their OpenTelemetry metrics (`customMetrics`, `cdc.reader.*` and `cdc.sink.*`).',
        },
      },
      query('slot-lag-bytes', 'Replication slot lag (bytes)', readerSeries(READER_METRICS.slotLagBytes, 'max(value)', 'lagBytes'), 'timechart'),
      query('slot-lag-seconds', 'Replication slot lag (seconds)', readerSeries(READER_METRICS.slotLagSeconds, 'max(value)', 'lagSeconds'), 'timechart'),
      query(
        'changes',
        'Changes published per 5 minutes, by table and operation',
        `customMetrics
| where name == "${READER_METRICS.changes}"
| summarize changes = sum(value) by bin(timestamp, 5m), table = strcat(tostring(customDimensions["cdc.table"]), " ", tostring(customDimensions["cdc.op"]))
| render timechart`,
        'timechart',
      ),
      query(
        'commit-to-ack',
        'Commit to Event Hubs acknowledgement (ms, average and max)',
        `customMetrics
| where name == "${READER_METRICS.commitToAckMs}"
| summarize average = sum(value) / sum(valueCount), maximum = max(valueMax) by bin(timestamp, 5m)
| render timechart`,
        'timechart',
      ),
      query('inflight', 'Bytes in flight to Event Hubs', readerSeries(READER_METRICS.inflightBytes, 'max(value)', 'inflightBytes'), 'timechart'),
      query('ready', 'Reader ready (1) or not (0)', readerSeries(READER_METRICS.ready, 'min(value)', 'ready'), 'timechart'),
      query(
        'sink-events',
        'Events per sink per 5 minutes: delivered (in) and written, against what the reader published',
        `${sinkMetrics(M.eventsIn, M.eventsWritten)}
| summarize events = sum(valueSum) by bin(timestamp, 5m), series = strcat(sink, iff(name == "${M.eventsIn}", " in", " written"))
| union (customMetrics | where name == "${READER_METRICS.changes}" | summarize events = sum(valueSum) by bin(timestamp, 5m), series = "published by the reader")
| render timechart`,
        'timechart',
      ),
      query(
        'sink-outcomes',
        'Sink outcomes and batches (last 24 h)',
        `${sinkMetrics(M.eventsIn, M.eventsWritten, M.eventsSkipped, M.eventsDeadLettered, M.eventsRetried, M.batchDurationMs)}
| summarize eventsIn = sumif(valueSum, name == "${M.eventsIn}"), written = sumif(valueSum, name == "${M.eventsWritten}"),
    skipped = sumif(valueSum, name == "${M.eventsSkipped}"), deadLettered = sumif(valueSum, name == "${M.eventsDeadLettered}"),
    retried = sumif(valueSum, name == "${M.eventsRetried}"), batches = sumif(valueCount, name == "${M.batchDurationMs}"),
    batchMeanMs = sumif(valueSum, name == "${M.batchDurationMs}") / sumif(valueCount, name == "${M.batchDurationMs}"),
    batchMaxMs = maxif(valueMax, name == "${M.batchDurationMs}"), lastBatch = maxif(timestamp, name == "${M.batchDurationMs}" and valueCount > 0) by sink`,
        'table',
      ),
      query(
        'dead-letters',
        'Dead-lettered events per sink',
        `${sinkMetrics(M.eventsDeadLettered)}
| summarize deadLettered = sum(valueSum) by bin(timestamp, 15m), sink
| render barchart`,
        'barchart',
      ),
      query(
        'commit-to-write',
        'Commit to sink write (ms), mean per sink',
        `${sinkMetrics(M.commitToWriteMs)}
| where valueCount > 0
| summarize meanMs = sum(valueSum) / sum(valueCount) by bin(timestamp, 5m), sink
| render timechart`,
        'timechart',
      ),
      query(
        'commit-to-write-percentiles',
        'Commit to sink write (ms) per sink: mean and max exact, p50/p95/p99 of the per-instance, per-minute means weighted by events (the exporter sends no buckets)',
        `${sinkMetrics(M.commitToWriteMs)}
| where valueCount > 0
| extend intervalMeanMs = valueSum / valueCount
| summarize events = sum(valueCount), meanMs = sum(valueSum) / sum(valueCount), maxMs = max(valueMax),
    percentilesw(intervalMeanMs, valueCount, 50, 95, 99) by sink`,
        'table',
      ),
      query(
        'function-failures',
        'Functions invocations: failures and duration by function',
        `requests
| summarize invocations = count(), failures = countif(success == false), p95DurationMs = percentile(duration, 95) by functionName = operation_Name`,
        'table',
      ),
      query(
        'function-exceptions',
        'Functions exceptions (latest 50)',
        `exceptions
| project timestamp, functionName = operation_Name, type, outerMessage
| top 50 by timestamp desc`,
        'table',
        '100',
      ),
    ],
    fallbackResourceIds: [appInsightsId],
    $schema: 'https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json',
  };
}

/** A stable GUID from a text (workbook resource names must be GUIDs, and the same on every run). */
export function stableGuid(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 18), 16) & 0x3f) | 0x80).toString(16)}${h.slice(18, 20)}-${h.slice(20, 32)}`;
}

export interface MonitoringArgs {
  resourceGroupName: pulumi.Input<string>;
  location: pulumi.Input<string>;
  appInsightsId: pulumi.Output<string>;
  thresholds: AlertThresholds;
  email: string | undefined;
  /** Stack-unique text the workbook's GUID is made from. */
  identity: string;
}

export function createMonitoring(args: MonitoringArgs): {
  workbook: applicationinsights.Workbook;
  alerts: monitor.ScheduledQueryRule[];
  actionGroup?: monitor.ActionGroup;
} {
  const book = new applicationinsights.Workbook('workbook', {
    resourceGroupName: args.resourceGroupName,
    location: args.location,
    resourceName: stableGuid(`${args.identity}/workbook`),
    kind: 'shared',
    category: 'workbook',
    displayName: `CDC pipeline (${args.identity})`,
    sourceId: args.appInsightsId,
    serializedData: args.appInsightsId.apply((id) => JSON.stringify(workbook(id))),
  });
  const actionGroup =
    args.email === undefined
      ? undefined
      : new monitor.ActionGroup('alerts', {
          resourceGroupName: args.resourceGroupName,
          location: 'global',
          groupShortName: 'cdc',
          enabled: true,
          emailReceivers: [{ name: 'email', emailAddress: args.email, useCommonAlertSchema: true }],
        });
  const alerts = alertDefinitions(args.thresholds).map(
    (a) =>
      new monitor.ScheduledQueryRule(`alert-${a.name}`, {
        resourceGroupName: args.resourceGroupName,
        location: args.location,
        kind: 'LogAlert',
        displayName: a.displayName,
        description: a.description,
        severity: a.severity,
        enabled: true,
        scopes: [args.appInsightsId],
        evaluationFrequency: a.evaluationFrequency,
        windowSize: a.windowSize,
        autoMitigate: true,
        criteria: {
          allOf: [
            {
              query: a.query,
              timeAggregation: 'Maximum',
              metricMeasureColumn: a.metricMeasureColumn,
              dimensions: a.dimensions.map((name) => ({ name, operator: 'Include', values: ['*'] })),
              operator: 'GreaterThan',
              threshold: a.threshold,
              failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 },
            },
          ],
        },
        ...(actionGroup ? { actions: { actionGroups: [actionGroup.id] } } : {}),
      }),
  );
  return { workbook: book, alerts, ...(actionGroup ? { actionGroup } : {}) };
}
