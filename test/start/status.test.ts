import { describe, expect, it } from '@jest/globals';
import { ReaderMetrics } from '../../src/reader/metrics.js';
import { SinkMetrics } from '../../src/worker/metrics.js';
import { statusLine } from '../../src/start/status.js';

describe('statusLine', () => {
  it('reads what the reader and the worker serve on /metrics', () => {
    const reader = new ReaderMetrics();
    for (let i = 0; i < 7; i++) reader.countChange('retail', 'orders_info', 'c');
    reader.snapshotProgress({ schema: 'retail', table: 'orders_info', rowsDone: 3, rowsTotal: 3, done: true }, 3);
    reader.slotLagSeconds = 2;
    const es = new SinkMetrics('elasticsearchSink', 'elasticsearch-sink');
    es.recordReport({ total: 9, ok: 8, skipped: 0, deadLettered: 1, retried: 0, outcomes: [] });
    es.partition(0).lag = 1;
    es.partition(1).lag = 0;
    const history = new SinkMetrics('changeHistory', 'change-history');
    history.recordReport({ total: 10, ok: 9, skipped: 0, deadLettered: 1, retried: 0, outcomes: [] });
    const worker = JSON.parse(JSON.stringify({ sinks: { elasticsearchSink: es.toJSON(), changeHistory: history.toJSON() } })) as Record<string, unknown>;
    expect(statusLine({ ordersWritten: 10, reader: JSON.parse(JSON.stringify(reader.toJSON())) as Record<string, unknown>, worker })).toBe(
      'orders 10 | published 10 | indexed 8 | dead-letters 2 | lag 2 s (slot) + 1 events (topic)',
    );
  });

  it('shows ? for a process that did not answer', () => {
    expect(statusLine({ ordersWritten: 3, reader: undefined, worker: undefined })).toBe(
      'orders 3 | published ? | indexed ? | dead-letters ? | lag ? (slot) + ? events (topic)',
    );
  });
});
