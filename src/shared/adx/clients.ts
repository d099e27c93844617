/**
 * The three ingestion modes behind one interface, and the control-command client. Built from the
 * configuration with the configured authentication:
 * - `queued` (production default): gzip JSON lines uploaded to the DM's temp blob container, then a
 *   message on its ingestion queue (azure-kusto-ingest `IngestClient`);
 * - `managed-streaming`: streaming ingestion with fallback to queued (`ManagedStreamingIngestClient`);
 *   streaming ignores extent tags, so `ingestIfNotExists` only applies when it falls back;
 * - `inline`: `.ingest inline` on the engine, for the Kusto emulator (no DM there).
 */
import { gzipSync } from 'node:zlib';
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { Client as KustoClient, KustoConnectionStringBuilder } from 'azure-kusto-data';
import {
  BlobDescriptor,
  CompressionType,
  DataFormat,
  IngestClient,
  IngestionMappingKind,
  ManagedStreamingIngestClient,
  StreamDescriptor,
} from 'azure-kusto-ingest';
import { kqlName, kqlString } from './kql.js';
import type { AdxAuthConfig, AdxConfig, AdxIngestionMode } from './types.js';

/** One ingestion: JSON lines for one table. */
export interface IngestRequest {
  table: string;
  mapping: string;
  /** Uncompressed JSON lines (one object per line). */
  data: Buffer;
  rows: number;
  /** Idempotency tag (see `idempotency.ts`). */
  tag: string;
  sourceId: string;
}

export interface Ingestor {
  readonly mode: AdxIngestionMode;
  ingest(request: IngestRequest): Promise<void>;
  close(): void;
}

/** Runs control commands (and `.ingest inline`) on the engine endpoint. Returns the primary result rows. */
export interface ControlClient {
  execute(command: string): Promise<Record<string, unknown>[]>;
  close(): void;
}

/**
 * zlib level for the uploaded JSON lines. The default (6) was the largest CPU cost of the ADX path
 * (about 5 µs of 17 per event in bench:adx). Levels 1–3 (zlib's fast deflate) take about a third of
 * that on these lines, all three the same within noise; 2 compresses a little better than 1 (66
 * against 67.5 bytes per orders event; level 6: 54). ADX counts the uncompressed size (sent with the
 * blob), so only the upload grows.
 */
const GZIP_LEVEL = 2;

/** The gzip the queued and managed-streaming ingestions upload (azure-kusto-ingest sends a GZIP descriptor as it is). */
export function gzipJsonLines(data: Buffer): Buffer {
  return gzipSync(data, { level: GZIP_LEVEL });
}

/**
 * The client's types say `Readable | ArrayBuffer`, but at run time it checks `instanceof Buffer`
 * (uploads a Buffer with `uploadData`; managed streaming keeps a Buffer in memory for its retries).
 */
function bufferAsStream(buffer: Buffer): ArrayBuffer {
  return buffer as unknown as ArrayBuffer;
}

function credentialFor(auth: AdxAuthConfig): TokenCredential | undefined {
  switch (auth.kind) {
    case 'managed-identity':
      return auth.clientId ? new ManagedIdentityCredential({ clientId: auth.clientId }) : new ManagedIdentityCredential();
    case 'default':
      return new DefaultAzureCredential({ managedIdentityClientId: auth.clientId, tenantId: auth.tenantId });
    default:
      return undefined;
  }
}

/** Connection builders sharing one credential (token caches are per credential). */
export function connectionFactory(config: Pick<AdxConfig, 'auth' | 'database'>): (url: string) => KustoConnectionStringBuilder {
  const credential = credentialFor(config.auth);
  return (url) => {
    let kcsb: KustoConnectionStringBuilder;
    if (config.auth.kind === 'app-key') {
      kcsb = KustoConnectionStringBuilder.withAadApplicationKeyAuthentication(
        url,
        config.auth.clientId ?? '',
        config.auth.clientSecret ?? '',
        config.auth.tenantId,
      );
    } else if (credential !== undefined) {
      kcsb = KustoConnectionStringBuilder.withTokenCredential(url, credential);
    } else {
      kcsb = new KustoConnectionStringBuilder(url);
    }
    kcsb.initialCatalog = config.database;
    kcsb.applicationNameForTracing = 'pg-cdc-functions';
    return kcsb;
  };
}

type IngestionFields = ConstructorParameters<typeof IngestClient>[1];

function ingestionProperties(database: string, request: IngestRequest): IngestionFields {
  return {
    database,
    table: request.table,
    format: DataFormat.JSON,
    ingestionMappingReference: request.mapping,
    ingestionMappingKind: IngestionMappingKind.JSON,
    ingestByTags: [request.tag],
    ingestIfNotExists: JSON.stringify([request.tag]),
  };
}

export class KustoControlClient implements ControlClient {
  private readonly client: KustoClient;

  constructor(
    kcsb: KustoConnectionStringBuilder,
    private readonly database: string,
  ) {
    this.client = new KustoClient(kcsb);
  }

  async execute(command: string): Promise<Record<string, unknown>[]> {
    const response = await this.client.execute(this.database, command);
    const table = response.primaryResults[0];
    if (table === undefined) return [];
    return [...table.rows()].map((row) => row.toJSON<Record<string, unknown>>());
  }

  close(): void {
    this.client.close();
  }
}

export class QueuedIngestor implements Ingestor {
  readonly mode = 'queued' as const;

  constructor(
    private readonly client: IngestClient,
    private readonly database: string,
  ) {}

  async ingest(request: IngestRequest): Promise<void> {
    const compressed = gzipJsonLines(request.data);
    // Upload and enqueue in two steps (what `ingestFromStream` does) so the queue message carries
    // the uncompressed size, which the DM's batching policy counts (`ingestFromStream` sends none).
    const descriptor = new StreamDescriptor(bufferAsStream(compressed), request.sourceId, CompressionType.GZIP, request.data.length);
    const blobName = `${this.database}__${request.table}__${request.sourceId}.json.gz`;
    const blobUrl = await this.client.uploadToBlobWithRetry(descriptor, blobName);
    await this.client.ingestFromBlob(new BlobDescriptor(blobUrl, request.data.length, request.sourceId), ingestionProperties(this.database, request));
  }

  close(): void {
    this.client.close();
  }
}

export class ManagedStreamingIngestor implements Ingestor {
  readonly mode = 'managed-streaming' as const;

  constructor(
    private readonly client: ManagedStreamingIngestClient,
    private readonly database: string,
  ) {}

  async ingest(request: IngestRequest): Promise<void> {
    const descriptor = new StreamDescriptor(bufferAsStream(gzipJsonLines(request.data)), request.sourceId, CompressionType.GZIP, request.data.length);
    await this.client.ingestFromStream(descriptor, ingestionProperties(this.database, request));
  }

  close(): void {
    this.client.close();
  }
}

/** The `.ingest inline` command for one request (exported for tests and the emulator docs). */
export function inlineIngestCommand(request: IngestRequest): string {
  const props = [
    `format=${kqlString('json')}`,
    `ingestionMappingReference=${kqlString(request.mapping)}`,
    `tags=${kqlString(JSON.stringify([`ingest-by:${request.tag}`]))}`,
    `ingestIfNotExists=${kqlString(JSON.stringify([request.tag]))}`,
  ];
  // The data part is not KQL: it runs verbatim to the end of the command text. JSON lines never
  // contain a raw newline inside a value, so each line is one record.
  return `.ingest inline into table ${kqlName(request.table)} with (${props.join(', ')}) <|\n${request.data.toString('utf8').replace(/\n$/, '')}`;
}

export class InlineIngestor implements Ingestor {
  readonly mode = 'inline' as const;

  constructor(private readonly control: ControlClient) {}

  async ingest(request: IngestRequest): Promise<void> {
    await this.control.execute(inlineIngestCommand(request));
  }

  close(): void {
    // The control client is owned by the sink.
  }
}

export interface AdxClients {
  control: ControlClient;
  ingestor: Ingestor;
}

export function createClients(config: AdxConfig): AdxClients {
  const kcsb = connectionFactory(config);
  const control = new KustoControlClient(kcsb(config.clusterUrl), config.database);
  switch (config.mode) {
    case 'queued':
      return { control, ingestor: new QueuedIngestor(new IngestClient(kcsb(config.ingestUrl), undefined, false), config.database) };
    case 'managed-streaming':
      return {
        control,
        ingestor: new ManagedStreamingIngestor(
          new ManagedStreamingIngestClient(kcsb(config.clusterUrl), kcsb(config.ingestUrl), undefined, false),
          config.database,
        ),
      };
    case 'inline':
      return { control, ingestor: new InlineIngestor(control) };
  }
}
