/**
 * Dead-letter store in an Azure Blob container: one JSON blob per record, named deterministically so
 * that a redelivered batch overwrites instead of duplicating.
 */
import { DefaultAzureCredential } from '@azure/identity';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { getOptionalString, getString, type Env } from '../config/env.js';
import { ConfigError, PermanentRecordError, TransientSinkError } from '../errors.js';
import type { PointerResolver } from '../batch/pointers.js';
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

/** Reads the full events behind the reader's pointer events (see `batch/pointers.ts`). */
export class BlobPointerResolver implements PointerResolver {
  constructor(private readonly service: BlobServiceClient) {}

  async fetch(pointer: { container: string; blob: string }): Promise<Buffer> {
    try {
      return await this.service.getContainerClient(pointer.container).getBlobClient(pointer.blob).downloadToBuffer();
    } catch (error) {
      if ((error as { statusCode?: number }).statusCode === 404) {
        throw new PermanentRecordError('POINTER_BROKEN', `Pointer blob ${pointer.container}/${pointer.blob} does not exist`, error);
      }
      throw new TransientSinkError(`Could not read pointer blob ${pointer.container}/${pointer.blob}`, error);
    }
  }
}

/**
 * The storage account of the reader's oversized events: `POINTER_STORAGE_CONNECTION_STRING` or
 * `POINTER_STORAGE_ACCOUNT_URL` (DefaultAzureCredential), else the dead-letter store's account.
 * Undefined when nothing is configured (pointer events are then retried until it is).
 */
export function pointerResolverFromEnv(env: Env): BlobPointerResolver | undefined {
  const connectionString = getOptionalString(env, 'POINTER_STORAGE_CONNECTION_STRING');
  if (connectionString) return new BlobPointerResolver(BlobServiceClient.fromConnectionString(connectionString));
  const accountUrl = getOptionalString(env, 'POINTER_STORAGE_ACCOUNT_URL') ?? getOptionalString(env, 'DEADLETTER_STORAGE_ACCOUNT_URL');
  if (accountUrl) return new BlobPointerResolver(new BlobServiceClient(accountUrl, new DefaultAzureCredential()));
  const fallback = getOptionalString(env, 'DEADLETTER_STORAGE_CONNECTION_STRING') ?? getOptionalString(env, 'AzureWebJobsStorage');
  return fallback ? new BlobPointerResolver(BlobServiceClient.fromConnectionString(fallback)) : undefined;
}
