import { describe, expect, test } from '@jest/globals';
import { AckTracker } from '../../../src/reader/publish/ackTracker.js';

describe('ack tracker', () => {
  test('acknowledges the highest commit whose events and all earlier ones are confirmed', () => {
    const t = new AckTracker();
    const a = t.open();
    a.pending = 2;
    t.close(a, 10n);
    const b = t.open();
    b.pending = 1;
    t.close(b, 20n);
    const c = t.open(); // empty transaction (heartbeat)
    t.close(c, 30n);
    expect(t.ackedLsn).toBeNull();
    t.confirm(b);
    expect(t.advance()).toBeNull(); // a still pending
    t.confirm(a, 2);
    expect(t.advance()).toBe(30n);
  });
  test("an entry's onAcked runs once, in open order, only after every earlier entry is acknowledged", () => {
    const t = new AckTracker();
    const seen: string[] = [];
    const entries = ['a', 'b', 'c'].map((name) => {
      const e = t.open();
      e.pending = 1;
      e.onAcked = () => seen.push(name);
      return e;
    });
    for (const e of entries) t.close(e, 0n);
    // Confirmed out of order (the last first): nothing is acknowledged until the first one is.
    t.confirm(entries[2]!);
    t.confirm(entries[1]!);
    t.advance();
    expect(seen).toEqual([]);
    t.confirm(entries[0]!);
    t.advance();
    t.advance();
    expect(seen).toEqual(['a', 'b', 'c']);
  });
  test('an open (uncommitted) transaction blocks acknowledgement', () => {
    const t = new AckTracker(5n);
    const a = t.open();
    a.pending = 1;
    t.confirm(a);
    expect(t.advance()).toBe(5n);
    t.close(a, 9n);
    expect(t.ackedLsn).toBe(9n);
  });
  test('idleAdvance moves to a server-vouched position only when nothing is open', () => {
    const t = new AckTracker(10n);
    const a = t.open();
    expect(t.idleAdvance(50n)).toBe(false);
    expect(t.ackedLsn).toBe(10n);
    t.close(a, 20n);
    expect(t.ackedLsn).toBe(20n);
    expect(t.idleAdvance(15n)).toBe(false);
    expect(t.idleAdvance(50n)).toBe(true);
    expect(t.ackedLsn).toBe(50n);
  });
});
