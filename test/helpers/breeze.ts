/**
 * A local stand-in of the Application Insights ingestion endpoint (Breeze, `POST
 * <IngestionEndpoint>/v2.1/track`): records the envelopes and answers as Breeze does. The exporter
 * rewrites an `http://` IngestionEndpoint to `https://` (ConnectionStringParser.sanitizeUrl), so it
 * serves HTTPS with a throw-away self-signed certificate for 127.0.0.1 (made with the openssl CLI).
 * A child process trusts it through NODE_EXTRA_CA_CERTS=`caFile`; the test process itself through
 * `trustInThisProcess()`. Nothing disables TLS verification.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { gunzipSync } from 'node:zlib';

export interface Envelope {
  name: string;
  iKey: string;
  time?: string;
  tags?: Record<string, string>;
  data: {
    baseType: string;
    baseData: {
      metrics?: { name: string; value: number; count?: number; min?: number; max?: number }[];
      properties?: Record<string, string>;
      /** RemoteDependencyData / RequestData */
      id?: string;
      name?: string;
      type?: string;
      success?: boolean;
      resultCode?: string;
      /** MessageData */
      message?: string;
      severityLevel?: string;
      /** ExceptionData */
      exceptions?: { typeName: string; message: string }[];
    };
  };
}

export interface FakeBreeze {
  server: Server;
  port: number;
  caFile: string;
  envelopes: Envelope[];
  requests: { path: string; encoding: string | undefined }[];
  /** Connection string pointing at the stand-in. */
  connectionString(ikey: string): string;
  /** Makes this process trust the stand-in's certificate (until `close`). */
  trustInThisProcess(): void;
  close(): Promise<void>;
}

export async function fakeBreeze(): Promise<FakeBreeze> {
  const dir = mkdtempSync(join(tmpdir(), 'fake-breeze-'));
  const keyFile = join(dir, 'key.pem');
  const caFile = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      caFile,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  const envelopes: Envelope[] = [];
  const requests: { path: string; encoding: string | undefined }[] = [];
  const server = createServer({ key: readFileSync(keyFile), cert: readFileSync(caFile) }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '').split('?')[0]!;
      const encoding = req.headers['content-encoding'];
      requests.push({ path, encoding });
      if (req.method !== 'POST' || !/\/v2\.1\/track$/.test(path)) {
        res.writeHead(404).end();
        return;
      }
      let body = Buffer.concat(chunks);
      if (encoding === 'gzip') body = gunzipSync(body);
      const items = JSON.parse(body.toString('utf8')) as Envelope[];
      envelopes.push(...items);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ itemsReceived: items.length, itemsAccepted: items.length, errors: [] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  let restore: string[] | undefined;
  return {
    server,
    port,
    caFile,
    envelopes,
    requests,
    connectionString: (ikey) => `InstrumentationKey=${ikey};IngestionEndpoint=http://127.0.0.1:${port}/`,
    trustInThisProcess() {
      restore ??= getCACertificates('default');
      setDefaultCACertificates([...restore, readFileSync(caFile, 'utf8')]);
    },
    async close() {
      if (restore) setDefaultCACertificates(restore);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Data points of one metric: value, count, min, max and the properties (attributes). */
export function metricPoints(envelopes: Envelope[], name: string) {
  return envelopes.flatMap((e) =>
    (e.data.baseData.metrics ?? []).filter((m) => m.name === name).map((m) => ({ ...m, properties: e.data.baseData.properties ?? {} })),
  );
}
