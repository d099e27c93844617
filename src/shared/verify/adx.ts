/**
 * ADX against its table. ADX keeps every change (append-only tables) and computes the present at
 * query time (`<Table>Current()`: the latest row per key by `__lsn`, without deletes and without rows
 * older than the table's latest truncate). Where the current rows come from is an interface:
 * - `HandedRowsSource`: the rows handed to ADX (the JSON lines of its ingestions, e.g. what a Kusto
 *   stand-in received), folded here by the same rules (`foldHandedRows`: arg_max by key in LSN
 *   order, then deletes, then truncates, then unchanged TOAST values filled from earlier rows); a row
 *   still listing unchanged TOAST columns is reported `unfilled`;
 * - `KustoCurrentRows`: a real cluster, `['<Table>Current']()` through the sink's control client.
 *   Not run here (no cluster on the build machines); the values come back in ADX's own forms
 *   (datetime, decimal, timespan), so expect format differences there until it is tried on one.
 * Each row of the table is rendered by the ADX sink's own `toTableRow` (ADX column names, values
 * shaped for their ADX types, `__raw_<column>` for values a type cannot hold) and compared without the
 * CDC columns; a column absent on one side counts as null (an ADX table has every column).
 */
import type { AdxRow } from '../adx/rows.js';
import { toTableRow } from '../adx/rows.js';
import { CDC_COLUMN_NAMES } from '../adx/schema.js';
import { rawColumnName } from '../adx/columnTypes.js';
import type { ControlClient } from '../adx/clients.js';
import { kqlName } from '../adx/kql.js';
import type { AdxTableRoute } from '../adx/types.js';
import { describeError } from '../core/errors.js';
import type { ChangeEvent, RowImage } from '../events/changeEvent.js';
import { parseJsonExact } from '../events/exactJson.js';
import { keyText } from '../events/documentId.js';
import { canonicalJson } from './compare.js';
import type { StoreSummary, VerifyReport } from './report.js';

export interface AdxRowsSource {
  /** Where the rows come from, for the report. */
  readonly name: string;
  /** The current rows of the route's table, as `<Table>Current()` has them. */
  currentRows(route: AdxTableRoute): Promise<AdxRow[]>;
  close(): void;
}

/** The row's `__key` (the latest-state view's grouping), or undefined for a row from before the column. */
const keyOfRow = (row: AdxRow): string | undefined => (typeof row.__key === 'string' && row.__key !== '' ? row.__key : undefined);

const lsnOf = (row: AdxRow, column: string): number => (typeof row[column] === 'number' ? row[column] : Number(row[column]));

/**
 * The LSN below which `<Table>Current()` hides the table's rows (-1: none), from its rows in the
 * truncates table, as the function computes it (`currentFunctionBody`): the latest truncate, and the
 * latest key change that a full snapshot started after it has completed on all its partitions.
 */
export function hiddenBelow(table: string, marks: Iterable<AdxRow>): number {
  let below = -1;
  const keyChanges: AdxRow[] = [];
  const started = new Map<string, number>();
  const done = new Map<string, Set<string>>();
  for (const mark of marks) {
    if (mark.Table !== table) continue;
    const kind = typeof mark.Kind === 'string' ? mark.Kind : '';
    const id = String(mark.Snapshot);
    if (kind === '' || kind === 'truncate') below = Math.max(below, lsnOf(mark, 'Lsn'));
    else if (kind === 'key_change') keyChanges.push(mark);
    else if (kind === 'snapshot_started') started.set(id, Math.min(started.get(id) ?? Infinity, lsnOf(mark, 'Lsn')));
    else if (kind === 'snapshot_done') done.set(id, (done.get(id) ?? new Set()).add(String(mark.Partition)));
  }
  for (const change of keyChanges) {
    const at = lsnOf(change, 'Lsn');
    const completed = [...started].some(([id, lsn]) => lsn > at && (done.get(id)?.size ?? 0) >= lsnOf(change, 'Partitions'));
    if (completed) below = Math.max(below, at);
  }
  return below;
}

/**
 * `<Table>Current()` over rows handed to ADX: per `__key` the row with the highest `__lsn`
 * (`arg_max(__lsn, *)`; duplicates are equal rows), then without deletes, then without rows below
 * what the table's marks in the truncates table hide (`hiddenBelow`: its latest truncate, its latest
 * completed key change), then its unchanged TOAST values filled as the function fills them
 * (docs/adx.md "Unchanged TOAST values"): from the key's latest earlier row in its lineage (since its
 * latest `c`/`r`) that carries the column, else, when that lineage starts with a key change's `c`,
 * from the old key's rows before it. What cannot be filled stays listed in `__unchanged_toast`.
 */
export function foldHandedRows(route: AdxTableRoute, rows: Iterable<AdxRow>, truncates: Iterable<AdxRow>): AdxRow[] {
  const byKey = new Map<string, AdxRow[]>();
  for (const row of rows) {
    const key = keyOfRow(row);
    if (key === undefined) continue;
    const list = byKey.get(key);
    if (list) list.push(row);
    else byKey.set(key, [row]);
  }
  for (const list of byKey.values()) list.sort((a, b) => lsnOf(a, '__lsn') - lsnOf(b, '__lsn'));
  const below = hiddenBelow(route.table, truncates);
  const current: AdxRow[] = [];
  for (const list of byKey.values()) {
    const latest = list[list.length - 1]!;
    if (latest.__deleted === true || lsnOf(latest, '__lsn') < below) continue;
    const toast = Array.isArray(latest.__unchanged_toast) ? (latest.__unchanged_toast as string[]) : [];
    current.push(toast.length === 0 ? latest : fillToast(byKey, list, latest, toast));
  }
  return current;
}

/** The rows of a key's lineage up to `upTo` (exclusive): from its latest insert or snapshot read on. */
function lineage(list: readonly AdxRow[], upTo: number): AdxRow[] {
  let start = 0;
  for (let i = 0; i < upTo; i++) if (list[i]!.__op === 'c' || list[i]!.__op === 'r') start = i;
  return list.slice(start, upTo);
}

function carrier(rows: readonly AdxRow[], column: string): AdxRow | undefined {
  for (let i = rows.length - 1; i >= 0; i--) {
    const row = rows[i]!;
    const listed = Array.isArray(row.__unchanged_toast) && (row.__unchanged_toast as string[]).includes(column);
    if (row.__deleted !== true && !listed && column in row) return row;
  }
  return undefined;
}

function fillToast(byKey: ReadonlyMap<string, AdxRow[]>, list: readonly AdxRow[], latest: AdxRow, toast: readonly string[]): AdxRow {
  const earlier = lineage(list, list.length - 1);
  const start = earlier[0] ?? latest;
  const oldKey = start.__op === 'c' && typeof start.__from_key === 'string' ? start.__from_key : undefined;
  const oldRows = oldKey === undefined ? [] : (byKey.get(oldKey) ?? []).filter((row) => lsnOf(row, '__lsn') < lsnOf(start, '__lsn'));
  const filled: AdxRow = { ...latest };
  const left: string[] = [];
  for (const column of toast) {
    const from = carrier(earlier, column) ?? carrier(lineage(oldRows, oldRows.length), column);
    if (from === undefined) {
      left.push(column);
      continue;
    }
    filled[column] = from[column];
    const raw = rawColumnName(column);
    if (raw in from) filled[raw] = from[raw];
  }
  filled.__unchanged_toast = left.length > 0 ? left : null;
  return filled;
}

/** Current rows folded from the rows handed to ADX, by ADX table name (tables and the truncates table). */
export class HandedRowsSource implements AdxRowsSource {
  readonly name = 'rows handed to ADX';

  constructor(
    private readonly handed: (table: string) => Iterable<AdxRow>,
    private readonly truncatesTable: string,
  ) {}

  currentRows(route: AdxTableRoute): Promise<AdxRow[]> {
    return Promise.resolve(foldHandedRows(route, this.handed(route.table), this.handed(this.truncatesTable)));
  }

  close(): void {}
}

/** A real cluster: the route's `<Table>Current()` function. */
export class KustoCurrentRows implements AdxRowsSource {
  readonly name = 'ADX <Table>Current()';

  constructor(private readonly control: ControlClient) {}

  currentRows(route: AdxTableRoute): Promise<AdxRow[]> {
    return this.control.execute(`${kqlName(route.currentFunction)}()`);
  }

  close(): void {
    this.control.close();
  }
}

/** A row without its CDC columns (the `__raw_<column>` copies stay: they hold row values). */
function values(row: AdxRow): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [column, value] of Object.entries(row)) if (!CDC_COLUMN_NAMES.has(column)) out.set(column, value);
  return out;
}

/**
 * The row's key as the other stores' reports show it (`keyText`: `5`, `[2,null]`), from its `__key`
 * (the key as of the row), else (a current row from before the column) from the route's key columns.
 */
function checkKey(route: AdxTableRoute, row: AdxRow): string {
  const key = keyOfRow(row);
  if (key === undefined) return keyText(Object.fromEntries(route.keys.map((k) => [k, row[k] ?? null])));
  return keyText(parseJsonExact(key) as RowImage);
}

export class AdxTableCheck {
  readonly #current: Map<string, AdxRow>;

  constructor(
    private readonly report: VerifyReport,
    private readonly summary: StoreSummary,
    private readonly route: AdxTableRoute,
    current: readonly AdxRow[],
  ) {
    this.#current = new Map(current.map((row) => [checkKey(route, row), row]));
  }

  chunk(events: readonly ChangeEvent[]): void {
    for (const event of events) {
      this.summary.rows++;
      let expected: AdxRow;
      try {
        expected = toTableRow(event, this.route)!;
      } catch (error) {
        this.report.add(this.summary, { kind: 'missing', key: JSON.stringify(event.key), detail: `the sink cannot write this row: ${describeError(error)}` });
        continue;
      }
      const key = checkKey(this.route, expected);
      const actual = this.#current.get(key);
      if (actual === undefined) {
        this.report.add(this.summary, { kind: 'missing', key, detail: `no current row in ${this.route.table}` });
        continue;
      }
      this.#current.delete(key);
      const toast = actual.__unchanged_toast;
      if (Array.isArray(toast) && toast.length > 0) {
        this.report.add(this.summary, { kind: 'unfilled', key, detail: `unchanged TOAST columns without their value: ${toast.map(String).join(', ')}` });
      }
      const e = values(expected);
      const a = values(actual);
      for (const column of new Set([...e.keys(), ...a.keys()])) {
        const ev = canonicalJson(e.get(column) ?? null);
        const av = canonicalJson(a.get(column) ?? null);
        if (ev !== av) this.report.add(this.summary, { kind: 'field', key, field: column, expected: ev, actual: av, detail: 'values differ' });
      }
    }
  }

  finish(): void {
    for (const key of this.#current.keys()) {
      this.report.add(this.summary, { kind: 'extra', key, detail: `a current row of ${this.route.table}, but the table has no such row` });
    }
  }
}
