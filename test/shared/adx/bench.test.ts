import { describe, expect, it } from '@jest/globals';
import { measureAdxUsPerEvent } from '../../../bench/adx.js';

describe('bench:adx', () => {
  it('measures CPU per event for parse, unwrap, serialise and gzip', () => {
    const result = measureAdxUsPerEvent({ events: 2000, batch: 500, rounds: 1 });
    expect(result.events).toBe(2000);
    expect(result.usPerEvent).toBeGreaterThan(0);
    expect(result.usPerEvent).toBeCloseTo(result.stages.parse + result.stages.unwrap + result.stages.serialise + result.stages.compress, 0);
    expect(result.gzipBytesPerEvent).toBeGreaterThan(0);
  });
});
