import { describe, expect, test } from '@jest/globals';
import { AckTracker } from '../../../src/reader/publish/ackTracker.js';
import { Pipeline } from '../../../src/reader/publish/pipeline.js';
import type { OutRecord, Publisher } from '../../../src/reader/publish/publisher.js';
import { memoryLogger } from '../../../src/shared/core/logger.js';
import { eventually } from '../../helpers/services.js';

const rec = (n: number, size = 10): OutRecord => ({ topic: 't', key: Buffer.from(String(n)), value: Buffer.alloc(size, n % 256) });

/** A broker stand-in: records what was sent, fails the next N sends, or holds sends behind a gate. */
class FakePublisher implements Publisher {
  sent: OutRecord[][] = [];
  failNext = 0;
  gate: Promise<void> | null = null;
  async send(records: OutRecord[]): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('broker down');
    }
    this.sent.push(records);
  }
  async close(): Promise<void> {}
}

describe('pipeline', () => {
  test('retries a failed batch before anything after it: order kept, nothing skipped', async () => {
    const pub = new FakePublisher();
    pub.failNext = 3;
    const t = new AckTracker();
    const p = new Pipeline(pub, t, memoryLogger(), { maxInflightBytes: 1 << 20, retryInitialMs: 1, retryMaxMs: 5, maxBatchRecords: 3 });
    const e = t.open();
    for (let i = 0; i < 10; i++) p.enqueue(rec(i), e);
    t.close(e, 42n);
    await p.drain();
    expect(pub.sent.flat().map((r) => r.key!.toString())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(t.ackedLsn).toBe(42n);
    expect(p.brokerHealthy).toBe(true);
  });

  test('backpressure: saturated while the broker does not answer; in-flight bytes bounded', async () => {
    const pub = new FakePublisher();
    let open!: () => void;
    pub.gate = new Promise((r) => (open = r));
    const t = new AckTracker();
    const p = new Pipeline(pub, t, memoryLogger(), { maxInflightBytes: 1000 });
    const e = t.open();
    let produced = 0;
    const producer = (async () => {
      for (let i = 0; i < 100; i++) {
        p.enqueue(rec(i, 100), e);
        produced++;
        if (p.saturated) await p.waitForCapacity();
      }
    })();
    await eventually('pipeline saturated', () => (p.saturated && produced > 0 ? true : undefined), 2_000, 1);
    expect(p.saturated).toBe(true);
    expect(produced).toBeLessThan(10);
    pub.gate = null;
    open();
    await producer;
    await p.drain();
    expect(pub.sent.flat()).toHaveLength(100);
    expect(p.peakBytesInFlight).toBeLessThan(1000 + 200);
  });
});
