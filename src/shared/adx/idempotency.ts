/**
 * Redelivery without duplicates. Each ingestion carries the extent tag `ingest-by:<tag>` and the
 * ingestion property `ingestIfNotExists: ["<tag>"]`, so ADX drops an ingestion whose tag is already on
 * an extent of the target table. The tag names the source table, the partition and the batch's first
 * and last offsets: the same events delivered again with the same boundaries (the host's retry
 * policy re-runs the same batch; a restart re-reads from the same checkpoint) are ingested once.
 *
 * What it does not cover (see docs/adx.md "Idempotency"): a redelivery with different boundaries
 * (e.g. a restart that reads more events into the first batch) has a different tag, so the overlap is
 * ingested twice; streaming ingestion ignores tags. Those duplicates are exact copies of a change
 * (same key, same `__lsn`), so the latest-state view (`arg_max(__lsn, *) by key`) is unaffected and the
 * history queries deduplicate on (key, column, Lsn).
 */
import { createHash } from 'node:crypto';

export function ingestionTag(sourceTable: string, partitionId: string, firstOffset: string, lastOffset: string): string {
  return `cdc:${sourceTable}:p${partitionId}:${firstOffset}-${lastOffset}`;
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
