import { describe, expect, test } from '@jest/globals';
import type { AddressInfo } from 'node:net';
import { startHealthServer } from '../../src/reader/health.js';
import { spawnReader } from './helpers.js';

describe('reader entry point and probes', () => {
  test('invalid configuration: exit code 2, names the variable, never echoes a secret', async () => {
    const child = spawnReader({
      EVENTHUBS_CONNECTION_STRING: 'Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=supersecretvalue',
      KAFKA_MAX_MESSAGE_BYTES: 'lots',
    });
    expect(await child.exited).toBe(2);
    const line = child.lines.find((l) => l.msg === 'invalid configuration');
    expect(line).toMatchObject({ level: 'error', variable: 'KAFKA_MAX_MESSAGE_BYTES' });
    expect(JSON.stringify(child.lines)).not.toContain('supersecretvalue');
  });

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
