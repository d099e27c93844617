/**
 * The Azurite side of the ADX tests: a unique temp container and ingestion queue with SAS URIs (what
 * the data-management service hands out), and readers for what the ingest client left there.
 */
import {
  AccountSASPermissions,
  AccountSASResourceTypes,
  AccountSASServices,
  BlobServiceClient,
  SASProtocol,
  StorageSharedKeyCredential,
  generateAccountSASQueryParameters,
} from '@azure/storage-blob';
import { uniqueName } from '../../../helpers/services.js';

function connectionSetting(connectionString: string, key: string): string {
  const part = connectionString.split(';').find((p) => p.toLowerCase().startsWith(`${key.toLowerCase()}=`));
  if (part === undefined) throw new Error(`AZURE_STORAGE_CONNECTION_STRING has no ${key}`);
  return part.slice(key.length + 1);
}

export function storageConnectionString(): string {
  const value = process.env.AZURE_STORAGE_CONNECTION_STRING?.trim();
  if (!value) throw new Error('AZURE_STORAGE_CONNECTION_STRING is not set: run the tests with `npm test` (its globalSetup starts Azurite)');
  return value;
}

export interface IngestionStorage {
  container: string;
  queue: string;
  /** SAS URIs as `.get ingestion resources` returns them. */
  containerUri: string;
  queueUri: string;
  failedQueueUri: string;
  successQueueUri: string;
  statusTableUri: string;
  /** Messages on the ingestion queue, peeked (text as stored: base64). */
  peekMessages(): Promise<string[]>;
  /** Blob contents by name. */
  downloadBlob(name: string): Promise<Buffer>;
  listBlobs(): Promise<string[]>;
}

export async function createIngestionStorage(): Promise<IngestionStorage> {
  const connectionString = storageConnectionString();
  const account = connectionSetting(connectionString, 'AccountName');
  const key = connectionSetting(connectionString, 'AccountKey');
  const blobEndpoint = connectionSetting(connectionString, 'BlobEndpoint').replace(/\/$/, '');
  const queueEndpoint = connectionSetting(connectionString, 'QueueEndpoint').replace(/\/$/, '');
  const sas = generateAccountSASQueryParameters(
    {
      expiresOn: new Date(Date.now() + 3_600_000),
      permissions: AccountSASPermissions.parse('rwdlacup'),
      resourceTypes: AccountSASResourceTypes.parse('sco').toString(),
      services: AccountSASServices.parse('bq').toString(),
      protocol: SASProtocol.HttpsAndHttp,
    },
    new StorageSharedKeyCredential(account, key),
  ).toString();

  const container = uniqueName('adx-temp').replace(/_/g, '-');
  const queue = uniqueName('adx-ready').replace(/_/g, '-');
  const blobService = BlobServiceClient.fromConnectionString(connectionString);
  const containerClient = blobService.getContainerClient(container);
  await containerClient.create();
  for (const q of [queue, `${queue}-failed`, `${queue}-ok`]) {
    const res = await fetch(`${queueEndpoint}/${q}?${sas}`, { method: 'PUT' });
    if (res.status !== 201 && res.status !== 204) throw new Error(`creating queue ${q}: HTTP ${res.status} ${await res.text()}`);
  }

  return {
    container,
    queue,
    containerUri: `${blobEndpoint}/${container}?${sas}`,
    queueUri: `${queueEndpoint}/${queue}?${sas}`,
    failedQueueUri: `${queueEndpoint}/${queue}-failed?${sas}`,
    successQueueUri: `${queueEndpoint}/${queue}-ok?${sas}`,
    statusTableUri: `${blobEndpoint.replace(/\/[^/]+$/, '')}/${account}/ingestionsstatus?${sas}`,
    async peekMessages() {
      const res = await fetch(`${queueEndpoint}/${queue}/messages?peekonly=true&numofmessages=32&${sas}`);
      if (res.status !== 200) throw new Error(`peek ${queue}: HTTP ${res.status}`);
      const xml = await res.text();
      return [...xml.matchAll(/<MessageText>([^<]*)<\/MessageText>/g)].map((m) => m[1]!);
    },
    async downloadBlob(name) {
      return containerClient.getBlobClient(name).downloadToBuffer();
    },
    async listBlobs() {
      const names: string[] = [];
      for await (const blob of containerClient.listBlobsFlat()) names.push(blob.name);
      return names;
    },
  };
}
