/**
 * The status in words: `statusLine` (one compact line, for a launcher that prints it every few
 * seconds) and `statusText` (the terminal form of `npm run status`). Both read only the model.
 */
import { isPartError, partValue, type Part, type PipelineStatus, type ReaderSchemaChange } from './types.js';

export const formatCount = (n: number | null | undefined): string =>
  typeof n === 'number' && Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '?';

/** One schema change in a few words: `app.t: key id -> code; added c; dropped s; s: text -> jsonb`. */
export function schemaChangeSummary(c: ReaderSchemaChange): string {
  const parts: string[] = [];
  if (c.changed.includes('name')) parts.push('renamed');
  if (c.changed.includes('key')) parts.push(`key ${c.keyBefore.join(', ') || '-'} -> ${c.keyAfter.join(', ') || '-'}`);
  if (c.added.length > 0) parts.push(`added ${c.added.join(', ')}`);
  if (c.dropped.length > 0) parts.push(`dropped ${c.dropped.join(', ')}`);
  parts.push(...c.retyped);
  if (c.changed.includes('identity')) parts.push('replica identity');
  return `${c.table}: ${parts.join('; ') || c.changed.join(', ')}`;
}

export function formatBytes(n: number | null | undefined): string {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '?';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

export function formatDuration(ms: number | null | undefined): string {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${(ms / 3_600_000).toFixed(1)} h`;
}

/** The figures the one-liner and the page's stages show, in one place. */
export function headline(status: PipelineStatus) {
  const hub = partValue(status.hub);
  const es = partValue(status.elasticsearch);
  const dl = partValue(status.deadLetters);
  return {
    published: hub?.published ?? null,
    indexed: es?.documents ?? null,
    deadLetters: dl?.total ?? null,
    endToEndLagMs: status.endToEnd.lagMs,
    slotLagBytes: partValue(status.postgres)?.slot.lagBytes ?? null,
    changes: partValue(status.reader)?.changes ?? null,
  };
}

export interface LineExtras {
  /** Orders the launcher's generator wrote, when it knows. */
  ordersWritten?: number;
}

/** One line: `orders 120 | published 118 | indexed 117 | dead letters 0 | end-to-end lag 0.8 s` (`?` = unknown; `!` = parts failing). */
export function statusLine(status: PipelineStatus, extras: LineExtras = {}): string {
  const h = headline(status);
  const parts = [
    ...(extras.ordersWritten === undefined ? [] : [`orders ${formatCount(extras.ordersWritten)}`]),
    `published ${formatCount(h.published)}`,
    `indexed ${formatCount(h.indexed)}`,
    `dead letters ${formatCount(h.deadLetters)}`,
    `end-to-end lag ${formatDuration(h.endToEndLagMs)}`,
  ];
  const failing = (
    Object.entries({
      postgres: status.postgres,
      reader: status.reader,
      hub: status.hub,
      elasticsearch: status.elasticsearch,
      deadLetters: status.deadLetters,
    }) as [string, Part<unknown>][]
  )
    .filter(([, part]) => isPartError(part) && part.configured !== false)
    .map(([name]) => name);
  return failing.length === 0 ? parts.join(' | ') : `${parts.join(' | ')} | ! ${failing.join(', ')}`;
}

/** Data (dead-letter reasons) reaches a terminal without its control characters: no escape sequence from a hostile reason runs there. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const plain = (text: string): string => text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ');

const failed = (part: Part<unknown>): string | undefined => (isPartError(part) ? part.error : undefined);

/** Several lines for a terminal: each stage, its numbers, and the newest dead letters. */
export function statusText(status: PipelineStatus): string {
  const out: string[] = [`pipeline status at ${status.collectedAt}`];
  const pg = partValue(status.postgres);
  out.push(
    pg
      ? `PostgreSQL  slot ${pg.slot.name}${pg.slot.active ? ' (active)' : ' (inactive)'}: lag ${formatBytes(pg.slot.lagBytes)}, retained ${formatBytes(pg.slot.retainedBytes)}, ` +
          `wal_status ${pg.slot.walStatus ?? '?'}, safe_wal_size ${pg.slot.safeWalSizeBytes === null ? 'unlimited' : formatBytes(pg.slot.safeWalSizeBytes)}; ` +
          `confirmed ${pg.slot.confirmedFlushLsn ?? '?'}, restart ${pg.slot.restartLsn ?? '?'}, current ${pg.slot.currentWalLsn}`
      : `PostgreSQL  ${failed(status.postgres)}`,
  );
  const reader = partValue(status.reader);
  out.push(
    reader
      ? `reader      ${formatCount(reader.changes)} changes (${formatCount(reader.changesPerSec)}/s), snapshot ${formatCount(reader.snapshotRows)} rows${reader.snapshotDone ? ' (done)' : ''}, ` +
          `in flight ${formatBytes(reader.inflightBytes)}, commit-to-ack p50 ${formatDuration(reader.commitToAckMs.p50)}`
      : `reader      ${failed(status.reader)}`,
  );
  for (const i of reader?.incrementalSnapshots ?? [])
    out.push(
      `            incremental snapshot ${i.table}: ${formatCount(i.rowsDone)}${i.done ? ' rows (done)' : ` of ~${formatCount(i.rowsTotal)} rows, ${formatCount(i.rowsPerSec)}/s, ETA ${i.etaSec === null ? '?' : `${i.etaSec} s`}`}`,
    );
  const latestChange = reader?.recentSchemaChanges.at(-1);
  if (reader && latestChange)
    out.push(`            ${formatCount(reader.schemaChanges)} schema changes, latest ${latestChange.at ?? '?'} ${schemaChangeSummary(latestChange)}`);
  const hub = partValue(status.hub);
  if (hub) {
    out.push(`hub         ${hub.kind} ${hub.topic}: ${formatCount(hub.published)} events published over ${hub.partitions.length} partitions`);
    for (const g of hub.groups) {
      out.push(
        isPartError(g)
          ? `  group     ${g.error}`
          : `  ${g.sink.padEnd(18)} group ${g.consumerGroup}: lag ${formatCount(g.lag)} (${g.partitions.map((p) => `${p.partition}:${p.lag}`).join(' ')})`,
      );
    }
  } else out.push(`hub         ${failed(status.hub)}`);
  const es = partValue(status.elasticsearch);
  if (es) {
    out.push(`Elasticsearch ${formatCount(es.documents)} documents in the table indices, newest change ${es.newestCommitTime ?? '-'}`);
    for (const i of es.indices) {
      out.push(
        `  ${i.index}${i.exists ? '' : ' (missing)'}: ${formatCount(i.documents)} documents, ${formatCount(i.liveDocuments)} in ${i.liveAlias}, newest change ${i.newestCommitTime ?? '-'}`,
      );
    }
    out.push(`  ${es.history.index}${es.history.exists ? '' : ' (missing)'}: ${formatCount(es.history.documents)} history rows`);
  } else out.push(`Elasticsearch ${failed(status.elasticsearch)}`);
  const dl = partValue(status.deadLetters);
  if (dl) {
    for (const c of dl.containers) {
      const bySink = Object.entries(c.bySink).map(([sink, n]) => `${sink} ${n}`);
      out.push(`dead letters ${c.container}: ${formatCount(c.count)}${c.truncated ? '+' : ''}${bySink.length > 0 ? ` (${bySink.join(', ')})` : ''}`);
      for (const e of c.newest) out.push(`  ${e.deadLetteredAt ?? '?'} ${plain(e.sink)}: ${plain(e.reason).slice(0, 200)}`);
    }
  } else out.push(`dead letters ${failed(status.deadLetters)}`);
  const e2e = status.endToEnd;
  out.push(
    `end to end  lag ${formatDuration(e2e.lagMs)}: newest committed ${e2e.newestCommitted ?? '?'}${e2e.newestCommittedSource === 'hub' ? ' (hub publish time)' : ''}, newest indexed ${e2e.newestIndexed ?? '?'}`,
  );
  return `${out.join('\n')}\n`;
}
