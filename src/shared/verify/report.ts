/**
 * What the checker found: every difference between a sink and its source table, counted per table
 * and sink, with the first few of each kept for printing (a million differences are counted, not
 * held). Values are shown as their JSON text, cut to a readable length.
 */

export type Store = 'source' | 'elasticsearch' | 'history' | 'adx';

export type DifferenceKind =
  /** A row of the table that the sink does not hold (or holds deleted). */
  | 'missing'
  /** Something the sink holds as current that the table does not have (e.g. a deleted row still live). */
  | 'extra'
  /** A field whose stored value is not the row's. */
  | 'field'
  /** A document or row still listing unchanged TOAST columns it never got the value of. */
  | 'unfilled'
  /** Rows of a table without a unique key that share one key, so the sinks hold one entry for them. */
  | 'collapsed'
  /** A document whose Elasticsearch `_version` is not the row version it carries (`__version`). */
  | 'version'
  /** The table's configuration cannot be checked, or makes a sink skip it. */
  | 'config';

export interface Difference {
  /** `schema.table`. */
  table: string;
  store: Store;
  kind: DifferenceKind;
  /** The row's key text (`keyText`), or null when the difference is about the table. */
  key: string | null;
  field?: string;
  /** What the store should hold (rendered from the table), JSON text. */
  expected?: string;
  /** What it holds, JSON text. */
  actual?: string;
  detail: string;
}

export interface StoreSummary {
  table: string;
  store: Store;
  /** Where the store keeps it (index, ADX table). */
  target: string;
  /** Rows of the table compared. */
  rows: number;
  differences: number;
  byKind: Partial<Record<DifferenceKind, number>>;
  /** Notes: what was not verifiable and why, counts of markers. */
  notes: string[];
  shown: Difference[];
}

const MAX_TEXT = 160;

/** A value as JSON text for a report line, cut to a readable length. */
export function shownValue(text: string | undefined): string {
  if (text === undefined) return 'absent';
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT - 3)}...` : text;
}

export class VerifyReport {
  readonly summaries: StoreSummary[] = [];
  readonly deadLetters: DeadLetterSummary[] = [];

  constructor(readonly maxShown = 20) {}

  /** The summary of one table in one store (created on first use). */
  store(table: string, store: Store, target: string): StoreSummary {
    let summary = this.summaries.find((s) => s.table === table && s.store === store && s.target === target);
    if (!summary) {
      summary = { table, store, target, rows: 0, differences: 0, byKind: {}, notes: [], shown: [] };
      this.summaries.push(summary);
    }
    return summary;
  }

  add(summary: StoreSummary, difference: Omit<Difference, 'table' | 'store'>): void {
    summary.differences++;
    summary.byKind[difference.kind] = (summary.byKind[difference.kind] ?? 0) + 1;
    if (summary.shown.length < this.maxShown) summary.shown.push({ table: summary.table, store: summary.store, ...difference });
  }

  get differences(): number {
    return this.summaries.reduce((n, s) => n + s.differences, 0);
  }

  /** The report as text, one line per difference shown. */
  format(): string {
    const lines: string[] = [];
    for (const s of this.summaries) {
      const kinds = Object.entries(s.byKind)
        .map(([kind, n]) => `${n} ${kind}`)
        .join(', ');
      lines.push(`${s.table} → ${s.store} ${s.target}: ${s.rows} rows, ${s.differences === 0 ? 'no differences' : `${s.differences} differences (${kinds})`}`);
      for (const d of s.shown) {
        const where = d.key === null ? '' : ` key ${d.key}`;
        const field = d.field === undefined ? '' : ` field ${JSON.stringify(d.field)}`;
        const values = d.expected === undefined && d.actual === undefined ? '' : `: table ${shownValue(d.expected)}, ${s.store} ${shownValue(d.actual)}`;
        lines.push(`  ${d.kind}${where}${field}${values} (${d.detail})`);
      }
      if (s.differences > s.shown.length) lines.push(`  ... and ${s.differences - s.shown.length} more`);
      for (const note of s.notes) lines.push(`  note: ${note}`);
    }
    for (const d of this.deadLetters) {
      lines.push(`dead letters in ${d.container}: ${d.total} (${d.replayed} replayed)`);
      for (const r of d.reasons) lines.push(`  ${r.count} × ${r.functionName}: ${shownValue(r.reason)}`);
    }
    lines.push(this.differences === 0 ? 'verify: no differences' : `verify: ${this.differences} differences`);
    return lines.join('\n');
  }
}

export interface DeadLetterSummary {
  container: string;
  total: number;
  /** Marked replayed by `npm run dlq:replay`. */
  replayed: number;
  /** Counts per sink and reason (not replayed), most frequent first. */
  reasons: { functionName: string; reason: string; count: number }[];
}
