/**
 * `npm run kibana:import` (scripts/kibana-import.ts) as a child process against a local HTTP stand-in
 * of Kibana's import API, which checks the request as Kibana documents it: `POST
 * /api/saved_objects/_import?overwrite=true`, the `kbn-xsrf` header, a multipart/form-data body
 * whose `file` part is the NDJSON file; and answers as Kibana does (200 with `success`,
 * `successCount`, `successResults` or `errors`).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KIBANA_FILE } from '../../scripts/dashboards.js';
import { spawnEntryPoint } from '../helpers/childProcess.js';

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: IncomingHttpHeaders;
  parts: { name: string | undefined; filename: string | undefined; content: string }[];
}

/** The parts of a multipart/form-data body (RFC 7578): name, filename and content of each. */
function multipart(body: Buffer, contentType: string | undefined): Received['parts'] {
  const boundary = /boundary=(?:"([^"]+)"|([^;]+))/.exec(contentType ?? '');
  if (!boundary) return [];
  const delimiter = `--${boundary[1] ?? boundary[2]}`;
  return body
    .toString('utf8')
    .split(delimiter)
    .slice(1, -1)
    .map((raw) => {
      const part = raw.replace(/^\r\n/, '').replace(/\r\n$/, '');
      const split = part.indexOf('\r\n\r\n');
      const head = part.slice(0, split);
      return {
        name: /name="([^"]*)"/.exec(head)?.[1],
        filename: /filename="([^"]*)"/.exec(head)?.[1],
        content: part.slice(split + 4),
      };
    });
}

describe('npm run kibana:import', () => {
  const received: Received[] = [];
  let answer: (r: Received) => { status: number; body: unknown } = () => ({ status: 500, body: {} });
  let server: Server;
  let url: string;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const r: Received = { method: req.method, url: req.url, headers: req.headers, parts: multipart(Buffer.concat(chunks), req.headers['content-type']) };
        received.push(r);
        const { status, body } = answer(r);
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const run = async (env: Record<string, string>) => {
    const child = spawnEntryPoint('scripts/kibana-import.ts', env);
    const code = await child.exited;
    return { code, out: child.lines.map((l) => String(l.msg ?? l.stderr)).join('\n') };
  };

  it('posts the saved-objects file as Kibana documents it and reports what was imported', async () => {
    const objects = readFileSync(KIBANA_FILE, 'utf8')
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; id: string; attributes: { title: string } });
    answer = (r) => {
      // What Kibana checks: the route, the XSRF header, one `file` part with an .ndjson name.
      const ok =
        r.method === 'POST' &&
        r.url === '/api/saved_objects/_import?overwrite=true' &&
        r.headers['kbn-xsrf'] !== undefined &&
        /^multipart\/form-data; boundary=/.test(r.headers['content-type'] ?? '') &&
        r.parts.length === 1 &&
        r.parts[0]?.name === 'file' &&
        /\.ndjson$/.test(r.parts[0].filename ?? '');
      if (!ok) return { status: 400, body: { statusCode: 400, error: 'Bad Request', message: '[request body.file]: expected value of type [Stream]' } };
      const lines = r.parts[0]!.content.trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; id: string; attributes: { title: string } });
      return {
        status: 200,
        body: {
          success: true,
          successCount: lines.length,
          successResults: lines.map((o) => ({ type: o.type, id: o.id, meta: { title: o.attributes.title } })),
        },
      };
    };
    const { code, out } = await run({ KIBANA_URL: url, KIBANA_USERNAME: 'elastic', KIBANA_PASSWORD: 's3cret-pw' });
    expect(out).toContain(`kibana:import: ${objects.length} objects imported into ${url}`);
    expect(code).toBe(0);
    const request = received.at(-1)!;
    expect(request.parts[0]!.content).toBe(readFileSync(KIBANA_FILE, 'utf8'));
    expect(request.headers.authorization).toBe(`Basic ${Buffer.from('elastic:s3cret-pw').toString('base64')}`);
    for (const o of objects) expect(out).toContain(`imported ${o.type} ${o.id} (${o.attributes.title})`);
    expect(out).not.toContain('s3cret-pw');
  });

  it("exits 1 with Kibana's error per object (a missing reference)", async () => {
    answer = () => ({
      status: 200,
      body: {
        success: false,
        successCount: 6,
        errors: [
          {
            type: 'lens',
            id: 'x1',
            title: 'Orders per city',
            error: { type: 'missing_references', references: [{ type: 'index-pattern', id: 'gone' }] },
          },
        ],
      },
    });
    const { code, out } = await run({ KIBANA_URL: url, KIBANA_API_KEY: 'key-value-123' });
    expect(code).toBe(1);
    expect(out).toContain('failed lens x1 (Orders per city): missing_references missing index-pattern gone');
    expect(received.at(-1)!.headers.authorization).toBe('ApiKey key-value-123');
  });

  it('names a refused request and a half-given login', async () => {
    answer = () => ({ status: 401, body: { statusCode: 401, error: 'Unauthorized', message: 'Unauthorized' } });
    expect(await run({ KIBANA_URL: url })).toEqual({ code: 1, out: expect.stringContaining(`kibana:import: ${url} answered 401: Unauthorized`) });
    const half = await run({ KIBANA_URL: url, KIBANA_USERNAME: 'elastic' });
    expect(half.code).toBe(1);
    expect(half.out).toContain('KIBANA_PASSWORD: expected both KIBANA_USERNAME and KIBANA_PASSWORD (or KIBANA_API_KEY)');
  });
});
