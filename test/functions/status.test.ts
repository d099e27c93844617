/** The `status` HTTP function: its registration (key auth) and its handler invoked as the host does, against real services. */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { app, HttpRequest, InvocationContext } from '@azure/functions';
import { statusFunctionOptions, statusHandler } from '../../src/functions/host/statusHandler.js';
import type { PipelineStatus } from '../../src/shared/status/types.js';
import { statusKit, type StatusKit } from '../shared/status/statusKit.js';

describe('status function', () => {
  let kit: StatusKit;
  beforeAll(async () => {
    kit = await statusKit('st_fn');
  });
  afterAll(async () => {
    await kit?.close();
  });

  it('is registered as GET /api/status with function-key auth', async () => {
    const spy = jest.spyOn(app, 'http').mockImplementation(() => undefined);
    try {
      await import('../../src/functions/status.js');
      expect(spy).toHaveBeenCalledTimes(1);
      const [name, options] = spy.mock.calls[0]!;
      expect(name).toBe('status');
      expect(options).toMatchObject({ methods: ['GET'], authLevel: 'function', route: 'status' });
    } finally {
      spy.mockRestore();
    }
    expect(statusFunctionOptions({}).authLevel).toBe('function');
  });

  it('answers the status JSON, collected from the real services, and logs the one-liner', async () => {
    const logged: string[] = [];
    const context = new InvocationContext({ invocationId: 'status-1', functionName: 'status', logHandler: (_level, ...args) => logged.push(args.join(' ')) });
    const request = new HttpRequest({ method: 'GET', url: 'http://localhost:7071/api/status' });
    const handler = statusHandler(kit.env);
    const response = await handler(request, context).finally(() => handler.close());
    expect(response.status).toBe(200);
    expect(response.headers).toEqual({ 'cache-control': 'no-store' });
    const body = response.jsonBody as PipelineStatus;
    expect(body.hub).toMatchObject({ kind: 'kafka', topic: kit.names.topic, published: 8 });
    expect(body.elasticsearch).toMatchObject({ documents: kit.expected.documents });
    expect(body.deadLetters).toMatchObject({ total: 3 });
    expect(body.reader).toMatchObject({ changes: kit.expected.readerChanges });
    expect(body.postgres).toMatchObject({ slot: { name: kit.names.slot, active: false } });
    expect(body.endToEnd.lagMs).toBe(kit.expected.endToEndLagMs);
    expect(logged).toEqual(['status: published 8 | indexed 3 | dead letters 3 | end-to-end lag 1.5 s']);
  });
});
