/** The ring buffer of samples behind the throughput chart, and the chart drawn from it. */
import { describe, expect, it } from '@jest/globals';
import { SampleRing, StatusMonitor, type StatusSample } from '../../../src/shared/status/monitor.js';
import { escapeHtml, throughputChart } from '../../../src/shared/status/page.js';
import type { PipelineStatus } from '../../../src/shared/status/types.js';

const sample = (at: number, published: number | null, indexed: number | null = published): StatusSample => ({
  at,
  published,
  indexed,
  deadLetters: 0,
  changes: null,
});

describe('status samples', () => {
  it('the ring keeps the newest `capacity` samples, oldest first, and filters by time', () => {
    const ring = new SampleRing(3);
    for (let i = 1; i <= 5; i++) ring.push(sample(i * 1000, i));
    expect(ring.values().map((s) => s.published)).toEqual([3, 4, 5]);
    expect(ring.values(3500).map((s) => s.published)).toEqual([4, 5]);
  });

  it('the monitor samples each collection it makes, and joins a collection already under way', async () => {
    let calls = 0;
    let now = 1_000_000;
    const status = (published: number): PipelineStatus => ({
      collectedAt: new Date(now).toISOString(),
      postgres: { error: 'x' },
      reader: { error: 'x' },
      hub: { kind: 'kafka', topic: 't', partitions: [], published, newestEventTime: null, groups: [] },
      elasticsearch: { error: 'x' },
      deadLetters: { containers: [], total: 2 },
      endToEnd: { newestCommitted: null, newestCommittedSource: null, newestIndexed: null, lagMs: null },
    });
    const monitor = new StatusMonitor(() => Promise.resolve(status(10 * ++calls)), { sampleIntervalMs: 0, now: () => now });
    const [a, b] = await Promise.all([monitor.current(), monitor.current()]);
    expect(a).toBe(b);
    now += 5000;
    await monitor.current();
    expect(calls).toBe(2);
    expect(monitor.samples()).toEqual([
      { at: 1_000_000, published: 10, indexed: null, deadLetters: 2, changes: null },
      { at: 1_005_000, published: 20, indexed: null, deadLetters: 2, changes: null },
    ]);
    now += 15 * 60_000;
    expect(monitor.samples()).toEqual([]);
  });

  it('the chart plots the rates between samples over the 15-minute window', () => {
    const now = 10_000_000;
    // 100 events in 10 s, then 300 in 10 s: 10/s and 30/s; indexed 0/s then 20/s.
    const svg = throughputChart([sample(now - 20_000, 0, 50), sample(now - 10_000, 100, 50), sample(now, 400, 250)], now);
    expect(svg).toContain('>30<'); // the axis' maximum
    const lines = [...svg.matchAll(/points="([^"]+)"/g)].map((m) => m[1]!.split(' '));
    expect(lines).toHaveLength(2);
    expect(lines.every((points) => points.length === 2)).toBe(true);
    // x = 32 + (age in the window / 15 min) * 656: now at 688, 10 s ago at 680.7. The newest rate of
    // 30/s is at the top of the plot (y = 32), indexed 0/s on the axis (y = 128).
    expect(lines[0]![1]).toBe('688.0,32.0');
    expect(lines[1]![0]).toBe('680.7,128.0');
    expect(throughputChart([], now)).toContain('collecting samples');
  });

  it('escapes every character that could open markup or an attribute', () => {
    expect(escapeHtml(`<a href="x" onclick='y'>&\``)).toBe('&#60;a href=&#34;x&#34; onclick=&#39;y&#39;&#62;&#38;&#96;');
  });
});
