import { describe, expect, test } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { startHealthServer } from '../../../src/shared/core/health.js';

describe('health server', () => {
  test('/healthz, /readyz, /metrics', async () => {
    let ready = false;
    let reset = 0;
    const server = await startHealthServer(0, { live: () => true, ready: () => ready, metrics: () => ({ changes: 3 }), resetMetrics: () => void reset++ });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
      expect((await fetch(`${base}/readyz`)).status).toBe(503);
      ready = true;
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
      expect(await (await fetch(`${base}/metrics`)).json()).toEqual({ changes: 3 });
      expect((await fetch(`${base}/metrics/reset`, { method: 'POST' })).status).toBe(200);
      expect(reset).toBe(1);
      expect((await fetch(`${base}/nope`)).status).toBe(404);
    } finally {
      server.close();
    }
  });
});
