/**
 * The workbook and alert rules infra/monitoring.ts provisions: every query is valid KQL against
 * Application Insights' tables (the Kusto language service, as queries/*.kql are checked), names only
 * metrics the reader exports, parses the sinks' batch lines as processBatch writes them, and the
 * workbook has the shape of Microsoft's workbook schema.
 */
import { describe, expect, test } from '@jest/globals';
import { alertDefinitions, READER_METRICS, SINK_BATCHES, stableGuid, workbook, type WorkbookItem } from '../../infra/monitoring.js';
import { processBatch } from '../../src/shared/batch/processBatch.js';
import type { PreparedRecord, RecordOutcome, Sink } from '../../src/shared/batch/types.js';
import type { Logger } from '../../src/shared/core/logger.js';
import { MemoryDeadLetterStore } from '../../src/shared/deadletter/memoryDeadLetterStore.js';
import { METRIC_NAMES } from '../../src/reader/otel.js';
import { SINKS } from '../../src/shared/sinks/registry.js';
import { changeEvent, order } from '../helpers/events.js';
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
  });

  test('the alerts cover slot lag (bytes, seconds), consumer lag per sink, dead letters in 15 minutes, readiness, Functions failures', () => {
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

  test("the queries name only metrics the reader exports, by the reader's own names", () => {
    const exported = new Set<string>(Object.values(METRIC_NAMES));
    expect(Object.values(READER_METRICS).filter((m) => !exported.has(m))).toEqual([]);
    const named = allQueries.flatMap(({ query }) => [...query.matchAll(/name == "([^"]+)"/g)].map((m) => m[1]!));
    expect(named.length).toBeGreaterThan(0);
    expect(named.filter((m) => !exported.has(m))).toEqual([]);
    // And the sinks they list are the sinks the Functions host runs.
    expect(SINK_BATCHES).toContain(SINKS.map((s) => `"${s.name}"`).join(', '));
  });

  test('the batch-line parse matches the line processBatch logs (names, counts)', async () => {
    const lines: string[] = [];
    const logger: Logger = { debug: () => undefined, info: (m) => lines.push(m), warn: () => undefined, error: () => undefined, child: () => logger };
    const sink: Sink<number> = {
      name: 'kept',
      prepare: (event) => Number(event.after?.orderid),
      write: (_prepared: readonly PreparedRecord<number>[]) => Promise.resolve(new Map<number, RecordOutcome>()),
    };
    const bodies = [changeEvent({ after: order(1) }), 'not json', changeEvent({ after: order(2) })];
    await processBatch(
      bodies.map((body, i) => ({ body, partitionId: '2', offset: String(i), sequenceNumber: String(i) })),
      {
        sink,
        deadLetters: new MemoryDeadLetterStore(),
        batch: { functionName: 'elasticsearchSink', partitionId: '2', firstOffset: '0', lastOffset: '2' },
        logger,
      },
    );
    // The KQL `parse` pattern as a regular expression: literal text between typed captures.
    const pattern = /\| parse message with (.+)$/m.exec(SINK_BATCHES)![1]!;
    const tokens = [...pattern.matchAll(/"([^"]*)"|(\w+):(\w+)/g)];
    const regex = new RegExp(
      `^${tokens.map((t) => (t[1] !== undefined ? t[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&') : t[3] === 'long' ? '(\\d+)' : '(.+?)')).join('')}$`,
    );
    const line = lines.find((l) => l.includes(' records, '));
    expect(line).toBeDefined();
    const m = regex.exec(line!);
    expect(m?.slice(1)).toEqual(['elasticsearchSink', '2', '0..2', '3', '2', '0', '1', '0']);
    expect(validateKql(`${SINK_BATCHES} | project sink, records, ok, skipped, deadLettered, retried`, appInsights)).toEqual([]);
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
