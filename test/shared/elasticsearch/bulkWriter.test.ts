/**
 * The bulk writer against the real test cluster: whole-request refusals (400, 413) are split down to
 * the items that cause them, which are dead-lettered, instead of failing (and retrying) everything.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client } from '@elastic/elasticsearch';
import { writeBulk, type BulkOp } from '../../../src/shared/elasticsearch/bulkWriter.js';
import { serviceEnv } from '../../helpers/services.js';
import { cleanup, getSource, testClient, uniqueIndex } from '../esTestKit.js';

const client = testClient();
const index = uniqueIndex('bulk_writer');

const op = (recordIndex: number, id: string, document: Record<string, unknown> = { n: recordIndex }): BulkOp => ({
  recordIndex,
  action: { index: { _index: index, _id: id } },
  document,
});

/**
 * A gateway in front of the real cluster that answers 413 to request bodies over `limit` bytes (as an
 * nginx `client_max_body_size` or Elasticsearch's own `http.max_content_length` would) and forwards
 * everything else.
 */
async function gateway(limit: number): Promise<{ url: string; server: Server; bulkSizes: number[] }> {
  const target = new URL(serviceEnv().elasticsearchUrl);
  const bulkSizes: number[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url?.includes('_bulk')) bulkSizes.push(body.length);
      if (body.length > limit) {
        res.writeHead(413, { 'content-type': 'text/plain' }).end('Request Entity Too Large');
        return;
      }
      const forward = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server, bulkSizes };
}

afterAll(async () => {
  await cleanup(client, [index]);
  await client.close();
});

describe('writeBulk (real Elasticsearch)', () => {
  it('whole-request 400: an _id over 512 bytes dead-letters only its item, the rest of the request lands (was: a transient error, retried forever)', async () => {
    const ops = [op(0, 'a'), op(1, 'b'), op(2, 'x'.repeat(600)), op(3, 'c'), op(4, 'd')];
    const failures = await writeBulk(client, ops, { maxAttempts: 2, backoffMs: 10, refresh: true });
    expect([...failures.keys()]).toEqual([2]);
    const failure = failures.get(2);
    expect(failure?.status).toBe('deadLetter');
    expect(failure?.status === 'deadLetter' && failure.reason).toMatch(/400 .*id .*too long|400 .*action_request_validation_exception/);
    for (const id of ['a', 'b', 'c', 'd']) expect(await getSource(client, index, id)).toBeDefined();
  });

  it('whole-request 413: splits the request until the parts fit, and dead-letters a single item that never fits with the reason', async () => {
    const proxy = await gateway(4_000);
    const viaProxy = new Client({ node: proxy.url, maxRetries: 0 });
    try {
      const ops = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => op(10 + i, `big-${i}`, { text: String(i).repeat(i === 5 ? 5_000 : 900) }));
      const failures = await writeBulk(viaProxy, ops, { maxAttempts: 2, backoffMs: 10, refresh: true });
      expect([...failures.keys()]).toEqual([15]);
      const failure = failures.get(15);
      expect(failure?.status === 'deadLetter' && failure.reason).toMatch(/413/);
      for (const i of [0, 1, 2, 3, 4, 6, 7]) expect((await getSource(client, index, `big-${i}`))?.source.text).toBe(String(i).repeat(900));
      // First the whole request, then halves, quarters ... never one request per item from the start.
      expect(proxy.bulkSizes.length).toBeGreaterThan(2);
      expect(proxy.bulkSizes[0]).toBeGreaterThan(4_000);
    } finally {
      await viaProxy.close();
      await new Promise((resolve) => proxy.server.close(resolve));
    }
  });
});
