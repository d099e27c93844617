/**
 * A local stand-in for the Kusto endpoints the ADX sink talks to, answering in the documented REST
 * format (v1 management responses: `{ Tables: [{ TableName, Columns: [{ ColumnName, DataType,
 * ColumnType }], Rows }] }`, which azure-kusto-data's `KustoResponseDataSetV1` parses):
 * - data management (`ingest-` endpoint): `.get ingestion resources` (queue and temp-container URIs
 *   with SAS, here pointing at a real Azurite) and `.get kusto identity token`;
 * - engine: control commands (recorded; answered with an empty table or a scripted reply) and
 *   streaming ingestion (`POST /v1/rest/ingest/{db}/{table}`, body recorded gunzipped);
 * - `GET /v1/rest/auth/metadata` → 404, so the client falls back to public-cloud defaults.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';
import type { AdxRow } from '../../../../src/shared/adx/rows.js';
import { parseJsonLossless } from '../../../../src/shared/events/exactJson.js';

export interface RecordedCommand {
  db: string;
  csl: string;
  path: string;
}

export interface RecordedStream {
  db: string;
  table: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  /** Body as sent (gzip) and decoded. */
  raw: Buffer;
  text: string;
}

export interface Reply {
  status: number;
  body: unknown;
}

export interface StandInOptions {
  /** URIs `.get ingestion resources` returns (only for a data-management stand-in). */
  resources?: { queue: string; container: string; failedQueue: string; successQueue: string; statusTable: string };
  authorizationContext?: string;
  /** Scripted reply for a command; undefined → the default. */
  onCommand?: (command: RecordedCommand) => Reply | undefined;
  onStream?: (stream: RecordedStream) => Reply | undefined;
}

export interface KustoStandIn {
  url: string;
  commands: RecordedCommand[];
  streams: RecordedStream[];
  close(): Promise<void>;
}

type Column = [name: string, type: 'string' | 'long' | 'datetime' | 'guid' | 'bool'];

const DATA_TYPES = { string: 'String', long: 'Int64', guid: 'Guid', datetime: 'DateTime', bool: 'Boolean' } as const;

/** A v1 management response with one table. */
export function v1Table(columns: Column[], rows: unknown[][]): unknown {
  return {
    Tables: [
      {
        TableName: 'Table_0',
        Columns: columns.map(([name, type]) => ({ ColumnName: name, DataType: DATA_TYPES[type], ColumnType: type })),
        Rows: rows,
      },
    ],
  };
}

/** Kusto's OneApi error body (what the service sends with 4xx/5xx). */
export function kustoError(code: string, message: string, permanent: boolean): unknown {
  return { error: { code, message, '@type': 'Kusto.Data.Exceptions.KustoBadRequestException', '@message': message, '@permanent': permanent } };
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function send(res: http.ServerResponse, reply: Reply): void {
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

export async function startKustoStandIn(options: StandInOptions = {}): Promise<KustoStandIn> {
  const commands: RecordedCommand[] = [];
  const streams: RecordedStream[] = [];

  const defaultCommandReply = (command: RecordedCommand): Reply => {
    const csl = command.csl.trim();
    if (csl.startsWith('.get ingestion resources')) {
      if (options.resources === undefined) return { status: 400, body: kustoError('BadRequest', 'not a data-management endpoint', true) };
      const r = options.resources;
      return {
        status: 200,
        body: v1Table(
          [
            ['ResourceTypeName', 'string'],
            ['StorageRoot', 'string'],
          ],
          [
            ['SecuredReadyForAggregationQueue', r.queue],
            ['FailedIngestionsQueue', r.failedQueue],
            ['SuccessfulIngestionsQueue', r.successQueue],
            ['TempStorage', r.container],
            ['IngestionsStatusTable', r.statusTable],
          ],
        ),
      };
    }
    if (csl.startsWith('.get kusto identity token')) {
      return { status: 200, body: v1Table([['AuthorizationContext', 'string']], [[options.authorizationContext ?? 'stand-in-authorization-context']]) };
    }
    if (csl.startsWith('.ingest inline')) {
      return { status: 200, body: v1Table([['ExtentId', 'guid']], [['00000000-0000-0000-0000-000000000001']]) };
    }
    return { status: 200, body: v1Table([['Result', 'string']], []) };
  };

  const server = http.createServer((req, res) => {
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://stand-in');
        const body = await readBody(req);
        if (req.method === 'GET' && url.pathname === '/v1/rest/auth/metadata') {
          send(res, { status: 404, body: {} });
          return;
        }
        if (req.method === 'POST' && url.pathname === '/v1/rest/mgmt') {
          const payload = JSON.parse(body.toString('utf8')) as { db: string; csl: string };
          const command: RecordedCommand = { db: payload.db, csl: payload.csl, path: url.pathname };
          commands.push(command);
          send(res, options.onCommand?.(command) ?? defaultCommandReply(command));
          return;
        }
        const ingest = /^\/v1\/rest\/ingest\/([^/]+)\/([^/]+)$/.exec(url.pathname);
        if (req.method === 'POST' && ingest) {
          const text = req.headers['content-encoding'] === 'gzip' ? gunzipSync(body).toString('utf8') : body.toString('utf8');
          const stream: RecordedStream = {
            db: decodeURIComponent(ingest[1]!),
            table: decodeURIComponent(ingest[2]!),
            query: Object.fromEntries(url.searchParams),
            headers: req.headers,
            raw: body,
            text,
          };
          streams.push(stream);
          send(res, options.onStream?.(stream) ?? { status: 200, body: v1Table([['ExtentId', 'guid']], [['00000000-0000-0000-0000-000000000002']]) });
          return;
        }
        send(res, { status: 404, body: kustoError('NotFound', `stand-in: no route for ${req.method} ${url.pathname}`, true) });
      } catch (error) {
        send(res, { status: 500, body: kustoError('InternalServiceError', String(error), false) });
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    commands,
    streams,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The rows a stand-in was handed for an ADX table: the JSON lines of its `.ingest inline` commands (inline ingestion), in order. */
export function handedRows(kusto: Pick<KustoStandIn, 'commands'>, table: string): AdxRow[] {
  const head = `.ingest inline into table ['${table}'] `;
  return kusto.commands
    .filter((command) => command.csl.startsWith(head))
    .flatMap((command) =>
      command.csl
        .slice(command.csl.indexOf('<|\n') + 3)
        .split('\n')
        .map((line) => parseJsonLossless(line) as AdxRow),
    );
}
