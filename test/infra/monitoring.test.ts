/**
 * The workbook and alert rules infra/monitoring.ts provisions: every query is valid KQL against
 * Application Insights' tables (the Kusto language service, as queries/*.kql are checked), names only
 * metrics the reader and the sinks export (by their exported names, and the sinks' attribute), reads
 * the sinks' metrics as the Azure Monitor exporter writes them, and the workbook has the shape of
 * Microsoft's workbook schema.
 */
import { describe, expect, test } from '@jest/globals';
import { alertDefinitions, READER_METRICS, sinkMetrics, stableGuid, workbook, type WorkbookItem } from '../../infra/monitoring.js';
import { SINK_ATTRIBUTE, SINK_METRIC_NAMES } from '../../src/shared/batch/metrics.js';
import { METRIC_NAMES } from '../../src/reader/otel.js';
import { SINKS } from '../../src/shared/sinks/registry.js';
import { tablesDatabase, validateKql } from '../shared/adx/helpers/kqlValidator.js';

/** Application Insights' (classic) tables and the columns the queries use, as Microsoft documents them. */
const appInsights = tablesDatabase('appinsights', {
  customMetrics:
    '(timestamp:datetime, name:string, value:real, valueCount:int, valueSum:real, valueMin:real, valueMax:real, valueStdDev:real, customDimensions:dynamic, cloud_RoleName:string, cloud_RoleInstance:string, operation_Name:string, operation_Id:string)',
  traces:
    '(timestamp:datetime, message:string, severityLevel:int, itemType:string, customDimensions:dynamic, operation_Name:string, operation_Id:string, cloud_RoleName:string, cloud_RoleInstance:string)',
  requests:
    '(timestamp:datetime, id:string, name:string, url:string, success:bool, resultCode:string, duration:real, performanceBucket:string, itemType:string, customDimensions:dynamic, operation_Name:string, operation_Id:string, cloud_RoleName:string, cloud_RoleInstance:string)',
  exceptions:
    '(timestamp:datetime, problemId:string, type:string, assembly:string, method:string, outerType:string, outerMessage:string, innermostMessage:string, severityLevel:int, details:dynamic, customDimensions:dynamic, operation_Name:string, operation_Id:string, cloud_RoleName:string)',
});

const thresholds = { slotLagBytes: 1024 ** 3, slotLagSeconds: 300, sinkStallMinutes: 15 };
const book = workbook('/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/components/ai');
const isQuery = (i: WorkbookItem): i is Extract<WorkbookItem, { type: 3 }> => i.type === 3;
const queries = book.items.filter(isQuery).map((i) => ({
  name: `workbook ${i.name}`,
  query: i.content.query,
}));
const allQueries = [...alertDefinitions(thresholds).map((a) => ({ name: `alert ${a.name}`, query: a.query })), ...queries];

describe('monitoring: workbook and alert rules', () => {
  test('every query is valid KQL against the Application Insights tables', () => {
    const problems = allQueries.flatMap(({ name, query }) => validateKql(query, appInsights).map((p) => `${name}: ${p}`));
    expect(problems).toEqual([]);
    // The validator does catch a wrong column (a passing run means something).
    expect(validateKql('customMetrics | summarize max(valueMaximum)', appInsights)).not.toEqual([]);
    // And a wrong aggregate or a wrong argument type of the ones the sink tiles use.
    expect(validateKql('customMetrics | summarize percentilesww(valueSum, valueCount, 95)', appInsights)).not.toEqual([]);
    expect(validateKql('customMetrics | summarize sumif(valueSum, name)', appInsights)).not.toEqual([]);
  });

  test('the alerts cover slot lag (bytes, seconds), a sink not consuming, dead letters in 15 minutes, readiness, Functions failures', () => {
    const alerts = alertDefinitions(thresholds);
    expect(alerts.map((a) => a.name)).toEqual(['slot-lag-bytes', 'slot-lag-seconds', 'sink-stalled', 'dead-letters', 'reader-not-ready', 'function-failures']);
    const byName = Object.fromEntries(alerts.map((a) => [a.name, a]));
    expect(byName['slot-lag-bytes']).toMatchObject({ threshold: 1024 ** 3, metricMeasureColumn: 'lagBytes', dimensions: ['slot'] });
    expect(byName['slot-lag-seconds']).toMatchObject({ threshold: 300, metricMeasureColumn: 'lagSeconds' });
    expect(byName['sink-stalled']).toMatchObject({ windowSize: 'PT15M', dimensions: ['sink'] });
    expect(byName['dead-letters']).toMatchObject({ windowSize: 'PT15M', threshold: 0, dimensions: ['sink'] });
    for (const a of alerts) {
      // Each measure column is produced by its query.
      expect(a.query).toContain(a.metricMeasureColumn);
      for (const d of a.dimensions) expect(a.query).toContain(d);
    }
  });

  test('the queries name only metrics the reader and the sinks export, by their exported names and attributes', () => {
    const sinkNames = Object.values(SINK_METRIC_NAMES);
    const exported = new Set<string>([...Object.values(METRIC_NAMES), ...sinkNames]);
    expect(Object.values(READER_METRICS).filter((m) => !new Set<string>(Object.values(METRIC_NAMES)).has(m))).toEqual([]);
    // Every "cdc.…" literal is a metric name, except inside customDimensions[...], where it is an attribute.
    const literals = (query: string) => [...query.matchAll(/(customDimensions\[)?"(cdc\.[^"]+)"/g)];
    const named = allQueries.flatMap(({ query }) =>
      literals(query)
        .filter((m) => m[1] === undefined)
        .map((m) => m[2]!),
    );
    const attributes = new Set(
      allQueries.flatMap(({ query }) =>
        literals(query)
          .filter((m) => m[1] !== undefined)
          .map((m) => m[2]!),
      ),
    );
    expect(named.filter((m) => !exported.has(m))).toEqual([]);
    // The sinks' figures come from the sinks' metrics: each one the sinks export is shown somewhere.
    expect(sinkNames.filter((m) => !named.includes(m))).toEqual([]);
    // The sink attribute is the one the sinks record; the others are the reader's (src/reader/otel.ts).
    expect([...attributes].sort()).toEqual([SINK_ATTRIBUTE, 'cdc.op', 'cdc.slot', 'cdc.table'].sort());
    // And the sinks they list are the sinks the Functions host runs.
    expect(sinkMetrics(SINK_METRIC_NAMES.eventsIn)).toContain(`sink in (${SINKS.map((s) => `"${s.name}"`).join(', ')})`);
  });

  test('dead letters, not consuming and the per-sink tiles read the sink counters as the exporter writes them (deltas in valueSum)', () => {
    const byName = Object.fromEntries(alertDefinitions(thresholds).map((a) => [a.name, a]));
    expect(byName['dead-letters']!.query).toBe(`customMetrics
| where name == "${SINK_METRIC_NAMES.eventsDeadLettered}"
| extend sink = tostring(customDimensions["${SINK_ATTRIBUTE}"])
| where sink in (${SINKS.map((s) => `"${s.name}"`).join(', ')})
| summarize deadLettered = sum(valueSum) by sink`);
    const stalled = byName['sink-stalled']!.query;
    expect(stalled).toContain(`name in ("${SINK_METRIC_NAMES.eventsIn}", "${SINK_METRIC_NAMES.eventsRetried}")`);
    expect(stalled).toContain('finished = sumif(valueSum');
    // No figure is parsed from log lines any more.
    expect(allQueries.filter(({ query }) => /\btraces\b|\bparse\b/.test(query)).map((q) => q.name)).toEqual([]);
    const items = Object.fromEntries(book.items.filter(isQuery).map((i) => [i.name, i.content]));
    expect(items['sink-events']?.query).toContain(`name in ("${SINK_METRIC_NAMES.eventsIn}", "${SINK_METRIC_NAMES.eventsWritten}")`);
    // Histograms: means from valueSum/valueCount, maxima from valueMax; percentiles only of interval means (no buckets are exported).
    expect(items['commit-to-write-percentiles']).toMatchObject({ visualization: 'table' });
    expect(items['commit-to-write-percentiles']?.query).toContain('percentilesw(intervalMeanMs, valueCount, 50, 95, 99) by sink');
    expect(items['commit-to-write-percentiles']?.query).toContain('maxMs = max(valueMax)');
  });

  test("the workbook has the shape of Microsoft's workbook schema", () => {
    expect(book.version).toBe('Notebook/1.0');
    expect(book.$schema).toBe('https://github.com/Microsoft/Application-Insights-Workbooks/blob/master/schema/workbook.json');
    expect(book.fallbackResourceIds).toEqual(['/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/components/ai']);
    const names = new Set<string>();
    for (const item of book.items) {
      // Every step: a known type with content, a unique name.
      expect([1, 3]).toContain(item.type);
      expect(typeof item.name).toBe('string');
      expect(names.has(item.name)).toBe(false);
      names.add(item.name);
      if (item.type === 1) expect(typeof item.content.json).toBe('string');
      else {
        expect(item.content).toMatchObject({ version: 'KqlItem/1.0', queryType: 0, resourceType: 'microsoft.insights/components' });
        expect(['timechart', 'table', 'barchart', 'tiles']).toContain(item.content.visualization);
        expect(item.content.title.length).toBeGreaterThan(0);
      }
    }
    // Round-trips as the JSON Azure stores (serializedData).
    expect(JSON.parse(JSON.stringify(book))).toEqual(book);
  });

  test('the workbook name is a GUID, the same for the same stack and different for another', () => {
    const a = stableGuid('prod/pgcdc/workbook');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(stableGuid('prod/pgcdc/workbook')).toBe(a);
    expect(stableGuid('dev/pgcdc/workbook')).not.toBe(a);
  });
});
