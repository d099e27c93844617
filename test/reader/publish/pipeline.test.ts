import { describe, expect, test } from '@jest/globals';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { AckTracker } from '../../../src/reader/publish/ackTracker.js';
import { Pipeline } from '../../../src/reader/publish/pipeline.js';
import type { OutRecord, Publisher } from '../../../src/reader/publish/publisher.js';
import { memoryLogger } from '../../../src/shared/core/logger.js';
import { eventually } from '../../helpers/services.js';
import { chunkRecord, RecordBuffers, writeChunk } from '../../../src/reader/encode/chunkRecords.js';
import type { EncodedChunk, RowsLayout } from '../../../src/reader/encode/chunkRecords.js';
import { idDocJson } from '../fixtures/idDocRows.js';

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

  describe('a snapshot chunk’s records as spans', () => {
    const layout: RowsLayout = { topic: 'hub', head: '{"after":', middle: ',"key":', limit: 1_000_000 };
    /** A chunk of `n` rows of about 100–400 bytes. */
    const chunkOf = (n: number): EncodedChunk =>
      writeChunk(
        idDocJson,
        layout,
        Array.from({ length: n }, (_, i) => [String(i), 'x'.repeat(100 + ((i * 37) % 300))]),
        new RecordBuffers(),
      );
    const keys = (records: OutRecord[]) => records.map((r) => r.key!.toString());

    test('sent in order between single records, each batch within the byte and record limits; the entry is acked after the last record', async () => {
      const pub = new FakePublisher();
      const t = new AckTracker();
      const p = new Pipeline(pub, t, memoryLogger(), { maxInflightBytes: 1 << 30, maxBatchBytes: 2_000, maxBatchRecords: 7 });
      const chunk = chunkOf(60);
      const e = t.open();
      let acked = 0;
      e.onAcked = () => acked++;
      p.enqueue(rec(-1), e);
      p.enqueueSpan({ chunk, from: 0, to: 25, topic: 'hub' }, e);
      p.enqueue(rec(-2), e);
      p.enqueueSpan({ chunk, from: 25, to: 60, topic: 'hub' }, e);
      expect(p.pendingRecords).toBe(62);
      t.close(e, 7n);
      await p.drain();
      const sent = pub.sent.flat();
      expect(keys(sent)).toEqual([
        '-1',
        ...Array.from({ length: 25 }, (_, i) => `{"id":${i}}`),
        '-2',
        ...Array.from({ length: 35 }, (_, i) => `{"id":${25 + i}}`),
      ]);
      // Byte-identical to the chunk's own records.
      for (let j = 0; j < 60; j++)
        expect(sent.find((r) => r.key!.toString() === `{"id":${j}}`)!.value!.equals(chunkRecord(chunk, j, 'hub')!.value!)).toBe(true);
      for (const batch of pub.sent) {
        expect(batch.length).toBeLessThanOrEqual(7);
        const bytes = batch.reduce((n, r) => n + r.key!.length + r.value!.length + 64, 0);
        if (batch.length > 1) expect(bytes).toBeLessThanOrEqual(2_000);
      }
      expect(pub.sent.length).toBeGreaterThan(9);
      expect(p.pendingRecords).toBe(0);
      expect(acked).toBe(1);
      expect(t.ackedLsn).toBe(7n);
    });

    test('a failed batch of a span is sent again, whole, before anything after it', async () => {
      const pub = new FakePublisher();
      pub.failNext = 2;
      const t = new AckTracker();
      const p = new Pipeline(pub, t, memoryLogger(), { maxInflightBytes: 1 << 30, retryInitialMs: 1, retryMaxMs: 5, maxBatchRecords: 4 });
      const chunk = chunkOf(10);
      const e = t.open();
      p.enqueueSpan({ chunk, from: 0, to: 10, topic: 'hub' }, e);
      t.close(e, 9n);
      await p.drain();
      expect(keys(pub.sent.flat())).toEqual(Array.from({ length: 10 }, (_, i) => `{"id":${i}}`));
      expect(pub.sent.map((b) => b.length)).toEqual([4, 4, 2]);
      expect(t.ackedLsn).toBe(9n);
    });

    test('a sent span is let go at once: its chunk can be collected before the queue is next cut', async () => {
      setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const pub = new FakePublisher();
      const t = new AckTracker();
      const p = new Pipeline(pub, t, memoryLogger(), { maxInflightBytes: 1 << 30 });
      const e = t.open();
      const sent = (() => {
        const chunk = chunkOf(5);
        p.enqueueSpan({ chunk, from: 0, to: 5, topic: 'hub' }, e);
        return new WeakRef(chunk);
      })();
      await p.drain();
      pub.sent = [];
      gc();
      expect(sent.deref()).toBeUndefined();
    });

    test('one record larger than a batch goes alone; the in-flight bytes count the span', async () => {
      const pub = new FakePublisher();
      let open!: () => void;
      pub.gate = new Promise((r) => (open = r));
      const t = new AckTracker();
      const p = new Pipeline(pub, t, memoryLogger(), { maxInflightBytes: 1 << 30, maxBatchBytes: 300 });
      const chunk = chunkOf(12);
      const e = t.open();
      p.enqueueSpan({ chunk, from: 2, to: 12, topic: 'hub' }, e);
      let bytes = 0;
      for (let j = 2; j < 12; j++) bytes += chunkRecord(chunk, j, 'hub')!.key!.length + chunkRecord(chunk, j, 'hub')!.value!.length + 64;
      expect(p.bytesInFlight).toBe(bytes);
      t.close(e, 1n);
      pub.gate = null;
      open();
      await p.drain();
      expect(pub.sent.every((b) => b.length === 1)).toBe(true);
      expect(keys(pub.sent.flat())).toEqual(Array.from({ length: 10 }, (_, i) => `{"id":${i + 2}}`));
      expect(p.bytesInFlight).toBe(0);
    });
  });
});
