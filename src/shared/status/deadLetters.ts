/**
 * The dead letters' part: per container how many there are, by sink, and the newest few with their
 * reasons (src/shared/deadletter: one JSON blob per record, named
 * `<namespace>/<hub>/<consumer group>/<function>/<partition>/...`). The listing is bounded, so a
 * container with very many dead letters costs one bounded listing, and says its count is a lower bound.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { DeadLetterDocument } from '../deadletter/types.js';
import type { DeadLetterContainerStatus, DeadLetterEntry } from './types.js';

export interface DeadLetterOptions {
  /** Most blobs listed per container. */
  listLimit: number;
  /** How many of the newest are read for their reasons. */
  newest: number;
}

/** Longest reason kept (a reason carries a sink's error text, which can be long). */
const MAX_REASON = 2000;
/** A dead letter holds the original body: read no more than this of it to find the reason. */
const MAX_READ_BYTES = 4 * 1024 * 1024;

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/**
 * The document, or, when only its start was read (a very large body), the fields before the body:
 * `toDeadLetterDocument` writes the reason and the position first.
 */
function parseDocument(text: string): Partial<DeadLetterDocument> {
  try {
    return JSON.parse(text) as Partial<DeadLetterDocument>;
  } catch (error) {
    const head: Record<string, unknown> = {};
    for (const field of ['functionName', 'partitionId', 'offset', 'reason']) {
      const m = new RegExp(`"${field}":("(?:[^"\\\\]|\\\\.)*")`).exec(text);
      if (m) head[field] = JSON.parse(m[1]!);
    }
    if (head.reason === undefined) throw error;
    return head;
  }
}

async function entry(container: ContainerClient, blob: string, sink: string, size: number): Promise<DeadLetterEntry> {
  let doc: Partial<DeadLetterDocument>;
  try {
    const bytes = await container.getBlobClient(blob).downloadToBuffer(0, Math.min(size, MAX_READ_BYTES));
    doc = parseDocument(bytes.toString('utf8'));
  } catch (error) {
    return { blob, sink, reason: `(unreadable dead letter: ${(error as Error).message})`, deadLetteredAt: null, partition: null, offset: null };
  }
  const reason = str(doc.reason) ?? '(no reason recorded)';
  return {
    blob,
    sink: str(doc.functionName) ?? sink,
    reason: reason.length > MAX_REASON ? `${reason.slice(0, MAX_REASON)}…` : reason,
    deadLetteredAt: str(doc.deadLetteredAt),
    partition: str(doc.partitionId),
    offset: str(doc.offset),
  };
}

export async function collectDeadLetterContainer(container: ContainerClient, options: DeadLetterOptions): Promise<DeadLetterContainerStatus> {
  const listed: { name: string; sink: string; modified: number; size: number }[] = [];
  let truncated = false;
  try {
    for await (const blob of container.listBlobsFlat()) {
      if (listed.length >= options.listLimit) {
        truncated = true;
        break;
      }
      listed.push({
        name: blob.name,
        sink: blob.name.split('/')[3] ?? 'unknown',
        modified: blob.properties.lastModified?.getTime() ?? 0,
        size: blob.properties.contentLength ?? 0,
      });
    }
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) {
      return { container: container.containerName, exists: false, count: 0, truncated: false, bySink: {}, newest: [] };
    }
    throw error;
  }
  const bySink: Record<string, number> = {};
  for (const b of listed) bySink[b.sink] = (bySink[b.sink] ?? 0) + 1;
  const newest = listed.sort((a, b) => b.modified - a.modified || b.name.localeCompare(a.name)).slice(0, options.newest);
  const entries = await Promise.all(newest.map((b) => entry(container, b.name, b.sink, b.size)));
  // Newest first by the time the sink recorded, where the blob says it; blob times are second-grained.
  entries.sort((a, b) => (b.deadLetteredAt ?? '').localeCompare(a.deadLetteredAt ?? ''));
  return { container: container.containerName, exists: true, count: listed.length, truncated, bySink, newest: entries };
}
