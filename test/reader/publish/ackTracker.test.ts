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
