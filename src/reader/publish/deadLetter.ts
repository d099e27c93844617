/**
 * Events too large for the hub go to a Blob container; the hub receives a small pointer event
 * instead (same key, same source/LSN, `deadletter` set, `before`/`after` null). Never dropped.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { ChangeEvent } from '../../shared/events/changeEvent.js';

export interface DeadLetterStore {
  /** Stores the body durably; returns where. Throws on failure (the caller retries). */
  put(name: string, body: Buffer): Promise<{ container: string; blob: string }>;
}

export function deadLetterBlobName(event: ChangeEvent): string {
  const s = event.source;
  const safe = (x: string) => encodeURIComponent(x);
  return `${safe(s.name)}/${safe(s.schema)}/${safe(s.table)}/${s.lsn ?? 0}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.json`;
}

export function pointerEvent(event: ChangeEvent, where: { container: string; blob: string }, bytes: number): ChangeEvent {
  return { ...event, before: null, after: null, deadletter: { container: where.container, blob: where.blob, bytes } };
}

export class BlobDeadLetterStore implements DeadLetterStore {
  private ensured = false;
  private constructor(
    private readonly container: ContainerClient,
    private readonly name: string,
  ) {}

  static async create(opts: { connectionString?: string | undefined; accountUrl?: string | undefined; container: string }): Promise<BlobDeadLetterStore> {
    // Loaded on demand: the Azure SDKs are only needed when a store is configured.
    const { blobServiceClient } = await import('../../shared/core/blobService.js');
    const service = blobServiceClient(opts);
    if (!service) throw new Error('dead-letter store not configured');
    return new BlobDeadLetterStore(service.getContainerClient(opts.container), opts.container);
  }

  async put(name: string, body: Buffer): Promise<{ container: string; blob: string }> {
    if (!this.ensured) {
      await this.container.createIfNotExists();
      this.ensured = true;
    }
    await this.container.getBlockBlobClient(name).uploadData(body, { blobHTTPHeaders: { blobContentType: 'application/json' } });
    return { container: this.name, blob: name };
  }
}
