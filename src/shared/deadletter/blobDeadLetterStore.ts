/**
 * Dead-letter store in an Azure Blob container: one JSON blob per record, named deterministically so
 * that a redelivered batch overwrites instead of duplicating.
 */
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { blobServiceClient } from '../core/blobService.js';
import { getOptionalString, getString, type Env } from '../core/env.js';
import { ConfigError, PermanentRecordError, TransientSinkError } from '../core/errors.js';
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
 * `SINK_DEADLETTER_CONNECTION_STRING`, or `SINK_DEADLETTER_ACCOUNT_URL` with DefaultAzureCredential
 * (managed identity), else `AZURE_STORAGE_CONNECTION_STRING`, else `AzureWebJobsStorage`; container
 * `SINK_DEADLETTER_CONTAINER` (default `cdc-sink-deadletter`, apart from the reader's `cdc-deadletter`).
 */
export function deadLetterStoreFromEnv(env: Env): BlobDeadLetterStore {
  const containerName = getString(env, 'SINK_DEADLETTER_CONTAINER', 'cdc-sink-deadletter');
  const service = blobServiceFromEnv(env, 'SINK_DEADLETTER_CONNECTION_STRING', 'SINK_DEADLETTER_ACCOUNT_URL');
  if (!service)
    throw new ConfigError(
      'SINK_DEADLETTER_ACCOUNT_URL',
      'a Blob service URL (or SINK_DEADLETTER_CONNECTION_STRING, AZURE_STORAGE_CONNECTION_STRING or AzureWebJobsStorage)',
      undefined,
    );
  return new BlobDeadLetterStore(service.getContainerClient(containerName));
}

function blobServiceFromEnv(env: Env, connectionSetting: string, urlSetting: string): BlobServiceClient | undefined {
  return (
    blobServiceClient({ connectionString: getOptionalString(env, connectionSetting), accountUrl: getOptionalString(env, urlSetting) }) ??
    blobServiceClient({ connectionString: getOptionalString(env, 'AZURE_STORAGE_CONNECTION_STRING') ?? getOptionalString(env, 'AzureWebJobsStorage') })
  );
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
 * The storage account where the reader puts oversized events (the reader's DEADLETTER_* account):
 * `READER_DEADLETTER_CONNECTION_STRING` or `READER_DEADLETTER_ACCOUNT_URL` (DefaultAzureCredential),
 * else the sink dead-letter account. Undefined when nothing is configured (pointer events are then
 * retried until it is).
 */
export function pointerResolverFromEnv(env: Env): BlobPointerResolver | undefined {
  const service =
    blobServiceFromEnv(env, 'READER_DEADLETTER_CONNECTION_STRING', 'READER_DEADLETTER_ACCOUNT_URL') ??
    blobServiceFromEnv(env, 'SINK_DEADLETTER_CONNECTION_STRING', 'SINK_DEADLETTER_ACCOUNT_URL');
  return service ? new BlobPointerResolver(service) : undefined;
}
