/**
 * Redelivery without duplicates. Each ingestion carries the extent tag `ingest-by:<tag>` and the
 * ingestion property `ingestIfNotExists: ["<tag>"]`, so ADX drops an ingestion whose tag is already on
 * an extent of the target table — the whole ingestion, whatever rows it holds. So the tag must name
 * exactly the rows ingested under it, and where they came from:
 * - readable: `cdc:<source table>:p<partition>:<first>-<last>:<digest>`, the batch's offsets for people;
 * - the digest (sha256, 16 hex) covers the origin (namespace, hub, consumer group) and, for every
 *   record whose rows are in the ingestion, its offset, sequence number and enqueued time.
 *
 * The same records delivered again (the host's retry policy re-runs the same batch; a restart re-reads
 * from the same checkpoint) get the same tag and are ingested once. A retry that now carries a record
 * the first attempt could not (a pointer whose Blob read failed for a moment) has a different tag, so
 * it is ingested rather than dropped as "already there". A recreated hub restarts its offsets, but its
 * records are enqueued later, so their tags differ from the old hub's.
 *
 * What it does not cover (see docs/adx.md "Idempotency"): a redelivery with other boundaries or with
 * more records has another tag, so the overlap is ingested twice; streaming ingestion ignores tags.
 * Those duplicates are exact copies of a change (same key, same `__lsn`), so the latest-state view
 * (`arg_max(__lsn, *) by key`) is unaffected and the history queries deduplicate on (key, column, Lsn).
 */
import { createHash } from 'node:crypto';
import type { BatchInfo, EventRecord } from '../batch/types.js';

export function ingestionTag(
  sourceTable: string,
  batch: Pick<BatchInfo, 'partitionId' | 'firstOffset' | 'lastOffset' | 'namespace' | 'eventHubName' | 'consumerGroup'>,
  records: readonly Pick<EventRecord, 'offset' | 'sequenceNumber' | 'enqueuedTimeUtc'>[],
): string {
  const digest = createHash('sha256').update(`${batch.namespace ?? ''}\n${batch.eventHubName ?? ''}\n${batch.consumerGroup ?? ''}\n${sourceTable}\n`);
  for (const r of records) digest.update(`${r.offset}|${r.sequenceNumber}|${r.enqueuedTimeUtc ?? ''}\n`);
  return `cdc:${sourceTable}:p${batch.partitionId}:${batch.firstOffset}-${batch.lastOffset}:${digest.digest('hex').slice(0, 16)}`;
}

/**
 * A UUID v4-shaped id derived from the table and the tag: the blob name and the queue message's
 * `Id` are the same on every attempt of the same batch, which makes redeliveries easy to trace.
 */
export function deterministicSourceId(table: string, tag: string): string {
  const hex = createHash('sha256').update(`${table}\n${tag}`).digest('hex');
  const variant = ((parseInt(hex.charAt(16), 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
