/**
 * Reads stored documents back (`mget`) for the sink to merge from (unchanged TOAST columns),
 * parsing the response losslessly like an event (`parseJsonLossless`): the client's own parser is
 * `JSON.parse`, which would round a json column's big numbers and write them back rounded.
 */
import type { Readable } from 'node:stream';
import { createGunzip, createInflate } from 'node:zlib';
import type { Client } from '@elastic/elasticsearch';
import { TransientSinkError } from '../core/errors.js';
import { parseJsonLossless } from '../events/exactJson.js';

export const storedKey = (index: string, id: string): string => `${index}\u0000${id}`;

async function readText(stream: Readable, encoding: string): Promise<string> {
  const source = encoding.includes('gzip') ? stream.pipe(createGunzip()) : encoding.includes('deflate') ? stream.pipe(createInflate()) : stream;
  const chunks: Buffer[] = [];
  for await (const chunk of source) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks).toString('utf8');
}

/** A found document as `mget` returns it, its `_source` parsed losslessly. */
export interface StoredDocument {
  _index: string;
  _id: string;
  _version?: number;
  _source: Record<string, unknown>;
}

/** Every found document of `docs` (with its `_version`); a missing index finds nothing. */
export async function storedDocumentList(client: Client, docs: readonly { _index: string; _id: string }[], what: string): Promise<StoredDocument[]> {
  if (docs.length === 0) return [];
  let text: string;
  let status: number;
  try {
    const result = await client.mget({ docs: [...docs] }, { asStream: true, meta: true });
    status = result.statusCode ?? 0;
    text = await readText(result.body as unknown as Readable, String(result.headers?.['content-encoding'] ?? ''));
  } catch (error) {
    throw new TransientSinkError(`Could not read documents to ${what}`, error);
  }
  if (status === 404) return [];
  if (status < 200 || status >= 300)
    throw new TransientSinkError(`Could not read documents to ${what}: Elasticsearch answered ${status} ${text.slice(0, 300)}`);
  const body = parseJsonLossless(text) as {
    docs?: (Partial<StoredDocument> & { _index: string; _id: string; found?: boolean; error?: { type?: string; reason?: string } })[];
  };
  const found: StoredDocument[] = [];
  for (const doc of body.docs ?? []) {
    // A document Elasticsearch could not read (its shard not started yet after a restart, the index
    // closed) is not a document that does not exist: taking it for one would write rows without the
    // values they should have kept (unchanged TOAST). Only a missing index finds nothing.
    if (doc.error !== undefined && doc.error.type !== 'index_not_found_exception')
      throw new TransientSinkError(
        `Could not read documents to ${what}: ${doc._index}/${doc._id}: ${doc.error.type ?? 'error'} ${doc.error.reason ?? ''}`.trim(),
      );
    if (doc.found && doc._source) found.push(doc as StoredDocument);
  }
  return found;
}

/** `_source` of every found document, by `storedKey(index, id)`; a missing index finds nothing. */
export async function storedDocuments(
  client: Client,
  docs: readonly { _index: string; _id: string }[],
  what: string,
): Promise<Map<string, Record<string, unknown>>> {
  const found = new Map<string, Record<string, unknown>>();
  for (const doc of await storedDocumentList(client, docs, what)) found.set(storedKey(doc._index, doc._id), doc._source);
  return found;
}
