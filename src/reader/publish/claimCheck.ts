/**
 * Claim checks for events too large for the hub: the full event goes to a Blob container and the hub
 * receives a small pointer event in its place (same key, same source/LSN, `before`/`after` null), so
 * the event is still delivered, in order, and never dropped. The pointer's wire field is named
 * `deadletter` for historic reasons (docs/reader.md "Oversized events"); it is the claim check, not a
 * dead letter.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { ChangeEvent } from '../../shared/events/changeEvent.js';

export interface ClaimCheckStore {
  /** Stores the body durably; returns where. Throws on failure (the caller retries). */
  put(name: string, body: Buffer): Promise<{ container: string; blob: string }>;
}

export function claimCheckBlobName(event: ChangeEvent): string {
  const s = event.source;
  const safe = (x: string) => encodeURIComponent(x);
  return `${safe(s.name)}/${safe(s.schema)}/${safe(s.table)}/${s.lsn ?? 0}-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.json`;
}

/** The event published in place of the stored one: where to fetch it, and its size. */
export function claimCheckPointer(event: ChangeEvent, where: { container: string; blob: string }, bytes: number): ChangeEvent {
  return { ...event, before: null, after: null, deadletter: { container: where.container, blob: where.blob, bytes } };
}

export class BlobClaimCheckStore implements ClaimCheckStore {
  private ensured = false;
  private constructor(
    private readonly container: ContainerClient,
    private readonly name: string,
  ) {}

  static async create(opts: { connectionString?: string | undefined; accountUrl?: string | undefined; container: string }): Promise<BlobClaimCheckStore> {
    // Loaded on demand: the Azure SDKs are only needed when a store is configured.
    const { blobServiceClient } = await import('../../shared/core/blobService.js');
    const service = blobServiceClient(opts);
    if (!service) throw new Error('claim-check store not configured');
    return new BlobClaimCheckStore(service.getContainerClient(opts.container), opts.container);
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
