import { describe, expect, test } from '@jest/globals';
import { ownHeapGrowth } from '../../../src/reader/snapshot/heapGrowth.js';

describe('the snapshot’s heap growth', () => {
  test('a process started with its own --heap-growing-percent (node flag or NODE_OPTIONS, either spelling) keeps it', () => {
    expect(ownHeapGrowth(['--max-old-space-size=128', '--heap-growing-percent=50'], undefined)).toBe(true);
    expect(ownHeapGrowth(['--heap_growing_percent=50'], undefined)).toBe(true);
    expect(ownHeapGrowth([], '--max-old-space-size=128  --heap-growing-percent=40')).toBe(true);
    expect(ownHeapGrowth([], '--heap-growing-percent')).toBe(true);
  });

  test('other flags are not taken for it', () => {
    expect(ownHeapGrowth(['--max-old-space-size=128', '--max-semi-space-size=8'], '--enable-source-maps')).toBe(false);
    expect(ownHeapGrowth(['--heap-growing-percentage=5'], '')).toBe(false);
    expect(ownHeapGrowth([], undefined)).toBe(false);
  });
  // That it takes effect is measured, not unit-tested: `BENCH_NODE_FLAGS=--trace-gc npm run bench:snapshot` counts
  // the mark-compacts (docs/reader.md, snapshot run 17); a small workload here did not show V8's heuristic reliably.
});
