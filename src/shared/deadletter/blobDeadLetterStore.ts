/**
 * Dead-letter store in an Azure Blob container: one JSON blob per record, named deterministically so
 * that a redelivered batch overwrites instead of duplicating.
 */
import { DefaultAzureCredential } from '@azure/identity';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { getOptionalString, getString, type Env } from '../config/env.js';
import { ConfigError } from '../errors.js';
import { deadLetterName, toDeadLetterDocument } from './deadLetterDocument.js';
import type { DeadLetter, DeadLetterStore } from './types.js';

export class BlobDeadLetterStore implements DeadLetterStore {
  readonly container: ContainerClient;
  #ready: Promise<unknown> | undefined;

  constructor(container: ContainerClient) {
    this.container = container;
  }

  async put(letter: DeadLetter): Promise<void> {
    this.#ready ??= this.container.createIfNotExists().catch((error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    await this.#ready;
    const text = JSON.stringify(toDeadLetterDocument(letter));
    await this.container.getBlockBlobClient(deadLetterName(letter)).upload(text, Buffer.byteLength(text), {
      blobHTTPHeaders: { blobContentType: 'application/json' },
    });
  }
}

/**
 * `DEADLETTER_STORAGE_CONNECTION_STRING` (falls back to `AzureWebJobsStorage`), or
 * `DEADLETTER_STORAGE_ACCOUNT_URL` with DefaultAzureCredential (managed identity);
 * container `DEADLETTER_CONTAINER` (default `cdc-deadletter`).
 */
export function deadLetterStoreFromEnv(env: Env): BlobDeadLetterStore {
  const containerName = getString(env, 'DEADLETTER_CONTAINER', 'cdc-deadletter');
  const accountUrl = getOptionalString(env, 'DEADLETTER_STORAGE_ACCOUNT_URL');
  const connectionString = getOptionalString(env, 'DEADLETTER_STORAGE_CONNECTION_STRING') ?? getOptionalString(env, 'AzureWebJobsStorage');
  let service: BlobServiceClient;
  if (accountUrl) service = new BlobServiceClient(accountUrl, new DefaultAzureCredential());
  else if (connectionString) service = BlobServiceClient.fromConnectionString(connectionString);
  else throw new ConfigError('Missing required setting DEADLETTER_STORAGE_ACCOUNT_URL or DEADLETTER_STORAGE_CONNECTION_STRING');
  return new BlobDeadLetterStore(service.getContainerClient(containerName));
}
