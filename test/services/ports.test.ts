/**
 * Port choice for the test services: the ports of one service must be distinct, or the service binds
 * one port twice and exits during start-up (seen once as Azurite's blob and table on one port after a
 * restart whose blob port was taken).
 */
import { describe, expect, it } from '@jest/globals';
import net from 'node:net';
import { freePort, portsFor } from './services.mjs';

async function listenOn(port: number): Promise<net.Server> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(port, '127.0.0.1', () => resolve());
  });
  return srv;
}

describe('portsFor', () => {
  it('keeps each free preferred port, and replaces a taken one by a port that is none of the others', async () => {
    const [taken, wanted] = await portsFor(undefined, undefined);
    expect(taken).not.toBe(wanted);
    const srv = await listenOn(taken!);
    try {
      const chosen = await portsFor(taken, wanted, wanted);
      expect(chosen[1]).toBe(wanted);
      expect(chosen[0]).not.toBe(taken);
      expect(new Set(chosen).size).toBe(3);
    } finally {
      srv.close();
    }
  });

  it('never hands out a port in freePort’s avoid set', async () => {
    const avoid = new Set<number>();
    for (let i = 0; i < 50; i++) avoid.add(await freePort(avoid));
    expect(avoid.size).toBe(50);
  });
});
