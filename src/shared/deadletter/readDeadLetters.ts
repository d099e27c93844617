/**
 * Reading the dead-letter container back: every blob, its document (deadLetterDocument.ts) and its
 * metadata, where `npm run dlq:replay` records a replay (`cdcreplayedat`, ISO time): a replayed
 * record is skipped by the next replay and counted apart by `npm run verify`.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { TransientSinkError } from '../core/errors.js';
import type { DeadLetterDocument } from './types.js';

/** Blob metadata key of a replayed dead letter (metadata names are C# identifiers; Azure stores them lower case). */
export const REPLAYED_AT = 'cdcreplayedat';

export interface StoredDeadLetter {
  name: string;
  document: DeadLetterDocument;
  metadata: Record<string, string>;
  /** The blob's ETag when read (a replay marks it only if unchanged since). */
  etag: string | undefined;
}

/** What a blob holds that is not a dead letter (a foreign file in the container). */
export interface UnreadableBlob {
  name: string;
  problem: string;
}

function isDocument(value: unknown): value is DeadLetterDocument {
  const d = value as Partial<DeadLetterDocument> | null;
  return typeof d === 'object' && d !== null && typeof d.functionName === 'string' && typeof d.reason === 'string' && typeof d.body === 'string';
}

/** Every dead letter of the container (name order), and the blobs that are not dead letters. */
export async function* readDeadLetters(container: ContainerClient, prefix?: string): AsyncGenerator<StoredDeadLetter | UnreadableBlob> {
  try {
    if (!(await container.exists())) return;
    for await (const item of container.listBlobsFlat({ includeMetadata: true, ...(prefix ? { prefix } : {}) })) {
      const blob = container.getBlobClient(item.name);
      const text = (await blob.downloadToBuffer()).toString('utf8');
      let document: unknown;
      try {
        document = JSON.parse(text);
      } catch {
        yield { name: item.name, problem: 'not JSON' };
        continue;
      }
      if (!isDocument(document)) {
        yield { name: item.name, problem: 'not a dead-letter document (no functionName, reason or body)' };
        continue;
      }
      yield { name: item.name, document, metadata: item.metadata ?? {}, etag: item.properties.etag };
    }
  } catch (error) {
    throw new TransientSinkError(`Could not read the dead-letter container ${container.containerName}`, error);
  }
}
