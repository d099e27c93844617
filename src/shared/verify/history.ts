/**
 * The change history against its table. The history is of changes, and a table holds only its
 * present, so what is checked is what the present implies (docs/verify.md "What is verified"):
 * - for every row and every tracked column whose history has an entry, the latest entry (by LSN,
 *   against the key's row-level deletes and the table's latest truncate) is an insert or update whose
 *   `NewValue` is the row's value, rendered by the history's own pivot and document (`historyRows` of
 *   an insert of the row, `historyDocument`); a later delete or truncate means the row should not be
 *   there (`missing`), another value is a `field` difference;
 * - every key of the history whose latest entry is an insert or update (after the table's latest
 *   truncate) is a row of the table; otherwise its delete never reached the history (`extra`).
 * Not verifiable from the table, and counted as such: a (row, column) without any entry (rows read by
 * the snapshot and never changed since; a key change's create lacking unchanged TOAST columns); the old
 * values; entries that were overwritten by later ones. Duplicates cannot exist: ids are
 * `table|key|lsn|column` written with `create`, a redelivery answers 409.
 */
import type { Client, estypes } from '@elastic/elasticsearch';
import type { ChangeEvent } from '../events/changeEvent.js';
import { historyDocument } from '../history/historyIndex.js';
import { historyRows } from '../history/pivot.js';
import type { HistoryRoute } from '../routing/routes.js';
import { HashSet64 } from './compare.js';
import type { StoreSummary, VerifyReport } from './report.js';

/** Most (key, column) buckets one aggregation may ask for (Elasticsearch's default limit is 65,536). */
const MAX_BUCKETS = 20_000;
const ROW_LEVEL = '\u0000row';
const PAGE = 500;

interface Entry {
  Op: string;
  Lsn: number;
  NewValue?: string | null;
}

type LatestByColumn = { key: string; buckets: { key: string; last: { hits: { hits: { _source?: Entry }[] } } }[] };

export class HistoryTableCheck {
  readonly #keys = new HashSet64();
  #truncateLsn: number | null | undefined;
  #unverified = 0;

  constructor(
    private readonly client: Client,
    private readonly report: VerifyReport,
    private readonly summary: StoreSummary,
    readonly index: string,
    readonly table: string,
    private readonly route: HistoryRoute | undefined,
    private readonly declared: readonly string[],
  ) {}

  /** The table's latest truncate in the history, or null. */
  async #truncate(): Promise<number | null> {
    if (this.#truncateLsn === undefined) {
      const result = await this.client.search<Entry>({
        index: this.index,
        size: 1,
        ignore_unavailable: true,
        query: { bool: { filter: [{ term: { SourceTable: this.table } }, { term: { Op: 't' } }] } },
        sort: [{ Lsn: 'desc' }],
      });
      this.#truncateLsn = result.hits.hits[0]?._source?.Lsn ?? null;
    }
    return this.#truncateLsn;
  }

  async chunk(events: readonly ChangeEvent[]): Promise<void> {
    const truncate = await this.#truncate();
    // What an insert of each row writes: the tracked columns and their values as the history stores them.
    const expected = events.map((event) => {
      const rows = historyRows({ ...event, op: 'c' }, this.route, this.declared);
      const keyText = rows[0]?.KeyText ?? null;
      return { keyText, values: new Map(rows.map((row) => [row.Column ?? '', historyDocument(row).NewValue as string | null])) };
    });
    for (const e of expected) {
      this.summary.rows++;
      if (e.keyText !== null) this.#keys.add(e.keyText);
    }
    const columns = Math.max(1, ...expected.map((e) => e.values.size + 1));
    const perRequest = Math.max(1, Math.floor(MAX_BUCKETS / columns));
    for (let i = 0; i < expected.length; i += perRequest) {
      const part = expected.slice(i, i + perRequest).filter((e) => e.keyText !== null);
      if (part.length === 0) continue;
      const result = await this.client.search({
        index: this.index,
        size: 0,
        ignore_unavailable: true,
        query: { bool: { filter: [{ term: { SourceTable: this.table } }, { terms: { KeyText: part.map((e) => e.keyText!) } }] } },
        aggs: {
          keys: {
            terms: { field: 'KeyText', size: part.length },
            aggs: {
              columns: {
                terms: { field: 'Column', size: columns + 1, missing: ROW_LEVEL },
                aggs: { last: { top_hits: { size: 1, sort: [{ Lsn: 'desc' }], _source: ['Op', 'Lsn', 'NewValue'] } } },
              },
            },
          },
        },
      });
      const buckets = (result.aggregations?.keys as { buckets?: { key: string; columns: LatestByColumn }[] } | undefined)?.buckets ?? [];
      const byKey = new Map(buckets.map((b) => [b.key, new Map(b.columns.buckets.map((c) => [c.key, c.last.hits.hits[0]?._source]))]));
      for (const e of part) this.#compare(e.keyText!, e.values, byKey.get(e.keyText!), truncate);
    }
  }

  #compare(key: string, values: Map<string, string | null>, latest: Map<string, Entry | undefined> | undefined, truncate: number | null): void {
    const rowLevel = latest?.get(ROW_LEVEL);
    for (const [column, value] of values) {
      const entry = latest?.get(column);
      // The latest of: the column's own entry, a delete of the row without column entries, the table's truncate.
      const candidates: { what: string; lsn: number; entry?: Entry }[] = [];
      if (entry) candidates.push({ what: `op ${entry.Op}`, lsn: entry.Lsn, entry });
      if (rowLevel) candidates.push({ what: `op ${rowLevel.Op} of the row`, lsn: rowLevel.Lsn });
      if (truncate !== null) candidates.push({ what: 'the truncate of the table', lsn: truncate });
      const last = candidates.sort((a, b) => b.lsn - a.lsn)[0];
      // Without any entry and without a truncate, the row may be a snapshot row never changed since.
      if (last === undefined) {
        this.#unverified++;
        continue;
      }
      if (last.entry && (last.entry.Op === 'c' || last.entry.Op === 'u')) {
        const stored = last.entry.NewValue ?? null;
        if (stored !== value) {
          this.report.add(this.summary, {
            kind: 'field',
            key,
            field: column,
            expected: JSON.stringify(value),
            actual: JSON.stringify(stored),
            detail: `the latest history entry (${last.what} at LSN ${last.lsn}) holds another value`,
          });
        }
        continue;
      }
      this.report.add(this.summary, {
        kind: 'missing',
        key,
        field: column,
        detail: `the history's last change of this column is ${last.what} at LSN ${last.lsn}, but the row exists (its insert is missing from the history)`,
      });
    }
  }

  /** After every chunk: keys the history holds as present that the table has not. */
  async finish(): Promise<void> {
    this.#keys.seal();
    const truncate = await this.#truncate();
    let after: Record<string, estypes.FieldValue> | undefined;
    for (;;) {
      const result = await this.client.search({
        index: this.index,
        size: 0,
        ignore_unavailable: true,
        query: { bool: { filter: [{ term: { SourceTable: this.table } }, { exists: { field: 'KeyText' } }] } },
        aggs: {
          keys: {
            composite: { size: PAGE, sources: [{ key: { terms: { field: 'KeyText' } } }], ...(after ? { after } : {}) },
            aggs: { last: { top_hits: { size: 1, sort: [{ Lsn: 'desc' }], _source: ['Op', 'Lsn'] } } },
          },
        },
      });
      const keys = result.aggregations?.keys as
        { after_key?: Record<string, estypes.FieldValue>; buckets: { key: { key: string }; last: { hits: { hits: { _source?: Entry }[] } } }[] } | undefined;
      for (const bucket of keys?.buckets ?? []) {
        const last = bucket.last.hits.hits[0]?._source;
        if (!last || (last.Op !== 'c' && last.Op !== 'u') || (truncate !== null && last.Lsn < truncate)) continue;
        if (this.#keys.has(bucket.key.key)) continue;
        this.report.add(this.summary, {
          kind: 'extra',
          key: bucket.key.key,
          detail: `the history's last change of this key is op ${last.Op} at LSN ${last.Lsn}, but the table has no such row (its delete is missing from the history)`,
        });
      }
      if (!keys?.after_key || keys.buckets.length < PAGE) break;
      after = keys.after_key;
    }
    if (this.#unverified > 0)
      this.summary.notes.push(
        `${this.#unverified} (row, column) pairs have no history entry to check (read by the snapshot and unchanged since, or a key change's create without its unchanged TOAST values)`,
      );
  }
}
