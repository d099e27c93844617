/**
 * Debezium-compatible envelope. Pure: the caller supplies every value, including the clock.
 */
import type { ChangeEvent, ChangeOp, RowImage, SnapshotMarker } from '../../shared/events/changeEvent.js';
import type { Lsn } from '../lsn.js';
import type { DebeziumColumn } from './debezium.js';

export const READER_VERSION = '0.1.0';

export interface EnvelopeInput {
  op: ChangeOp;
  serverName: string;
  db: string;
  schema: string;
  table: string;
  before: RowImage | null;
  after: RowImage | null;
  key: RowImage | null;
  /** The change's own WAL position (snapshot rows: the snapshot version, see docs/reader.md). */
  lsn: Lsn;
  commitLsn: Lsn | null;
  /** Commit LSN of the previous transaction, for Debezium's `source.sequence`. */
  lastCommitLsn: Lsn | null;
  txId: number | null;
  sourceTsMs: number;
  snapshot: SnapshotMarker;
  nowMs: number;
  unchangedToast?: string[];
  /** `source.types`: type names of the columns whose JSON value does not tell the type (TypeRegistry.columnTypes). */
  columnTypes?: Record<string, string> | undefined;
  /** `source.renamed_to`: the table's current `schema.table` when it differs from its captured name (docs/reader.md "Renames"). */
  renamedTo?: string | undefined;
  /** `old_key`: on the create of a primary-key change, the row's previous key (docs/reader.md). */
  oldKey?: RowImage | undefined;
  /**
   * The columns with their types, for the Debezium format's encoder (toRecord.ts). Given only in that
   * format; carried on the event under a symbol key, so no serialisation ever sees it.
   */
  columns?: readonly DebeziumColumn[] | undefined;
}

/** Where `EnvelopeInput.columns` travels on the event (a symbol: JSON.stringify and spreads of the fields skip it). */
export const EVENT_COLUMNS = Symbol('columns');
export type EventWithColumns = ChangeEvent & { [EVENT_COLUMNS]?: readonly DebeziumColumn[] };

/** `source.sequence` up to the change's LSN: the previous commit is the same for every change of a transaction, so its text is kept. */
let headLsn: Lsn | null | undefined;
let headText = '';
function sequenceHead(lastCommitLsn: Lsn | null): string {
  if (lastCommitLsn !== headLsn) {
    headLsn = lastCommitLsn;
    headText = lastCommitLsn === null ? '[null,"' : `["${lastCommitLsn}","`;
  }
  return headText;
}

/** `source.sequence`: Debezium's `["<previous commit LSN>","<this change's LSN>"]`, as a string. */
export function sequenceOf(lastCommitLsn: Lsn | null, lsn: Lsn): string {
  return `${sequenceHead(lastCommitLsn)}${lsn}"]`;
}

export function buildEnvelope(input: EnvelopeInput): ChangeEvent {
  const event: ChangeEvent = {
    before: input.before,
    after: input.after,
    source: {
      version: READER_VERSION,
      connector: 'postgresql',
      name: input.serverName,
      ts_ms: input.sourceTsMs,
      snapshot: input.snapshot,
      db: input.db,
      schema: input.schema,
      table: input.table,
      txId: input.txId,
      lsn: Number(input.lsn),
      sequence: sequenceOf(input.lastCommitLsn, input.lsn),
      commit_lsn: input.commitLsn === null ? null : Number(input.commitLsn),
    },
    op: input.op,
    ts_ms: input.nowMs,
    key: input.key,
  };
  if (input.unchangedToast && input.unchangedToast.length > 0) event.source.unchanged_toast = input.unchangedToast;
  if (input.columnTypes !== undefined) event.source.types = input.columnTypes;
  if (input.renamedTo !== undefined) event.source.renamed_to = input.renamedTo;
  if (input.oldKey !== undefined) event.old_key = input.oldKey;
  if (input.columns !== undefined) (event as EventWithColumns)[EVENT_COLUMNS] = input.columns;
  return event;
}

const J = JSON.stringify;
const num = (n: number | null | undefined): string => (typeof n === 'number' && Number.isFinite(n) ? String(n) : 'null');
/**
 * `source.ts_ms`, the commit time with its microseconds as a fraction (`BeginMessage.commitTimeMs`):
 * the same for every change of a transaction, so the last one's text is kept. Printing a double that
 * is not a small integer costs about 0.1 µs, once per transaction (with single-row transactions,
 * number printing was 7 % of the reader's samples, docs/reader.md run 18): a time of whole
 * microseconds is printed from its integer parts instead, the milliseconds' digits kept while they do
 * not change. Exactly `String(n)`: for 0 ≤ n < 2^43 ms (the year 2248) a double is less than 0.001
 * from its neighbours, so the shortest text that reads back as `U / 1000` is the exact decimal of
 * `U / 1000` itself, its fraction's trailing zeros dropped.
 */
let lastTs = NaN;
let lastTsText = 'null';
let lastWholeMs = NaN;
let lastWholeMsText = '';
const MAX_EXACT_MS = 2 ** 43;
function tsMs(n: number | null | undefined): string {
  if (n === lastTs) return lastTsText;
  if (typeof n !== 'number') return num(n);
  const whole = Math.floor(n);
  const micros = Math.round((n - whole) * 1000);
  let text: string;
  if (n >= 0 && n < MAX_EXACT_MS && micros < 1000 && (whole * 1000 + micros) / 1000 === n) {
    if (whole !== lastWholeMs) {
      lastWholeMs = whole;
      lastWholeMsText = String(whole);
    }
    text = micros === 0 ? lastWholeMsText : `${lastWholeMsText}.${fraction(micros)}`;
  } else text = num(n);
  lastTs = n;
  lastTsText = text;
  return text;
}
/** 1–999 thousandths as the digits after the point, without trailing zeros. */
function fraction(thousandths: number): string {
  if (thousandths % 100 === 0) return String(thousandths / 100);
  if (thousandths % 10 === 0) return String(thousandths / 10).padStart(2, '0');
  return String(thousandths).padStart(3, '0');
}
const str = (v: string | null): string => (v === null ? 'null' : J(v));
const row = (r: RowImage | null): string => (r === null ? 'null' : J(r));
/**
 * The JSON of the source's names (version, connector, server, database, schema, table, snapshot
 * marker): the same few strings in every event, so each is escaped once (a single-row transaction
 * spent most of its `sourceHeadJson` escaping them, docs/reader.md run 16). Bounded: past that many
 * distinct names the rest are escaped each time.
 */
const namesJson = new Map<string, string>();
const NAMES_KEPT = 4096;
const name = (v: string): string => {
  let json = namesJson.get(v);
  if (json === undefined) {
    json = J(v);
    if (namesJson.size < NAMES_KEPT) namesJson.set(v, json);
  }
  return json;
};
/** `source.types` is one object per relation: its JSON is computed once, not once per event. */
const typesJson = new WeakMap<Record<string, string>, string>();
const types = (t: Record<string, string>): string => {
  let json = typesJson.get(t);
  if (json === undefined) typesJson.set(t, (json = J(t)));
  return json;
};

/**
 * The event's JSON, byte-identical to `JSON.stringify(event)` for an event made by `buildEnvelope`, but
 * assembled from the fixed envelope layout with `keyJson` (the record key's JSON) reused, so the key is
 * serialised once per event and the constant source fields are not walked as an object. Events with
 * other fields (`transaction`, `deadletter`) go through `JSON.stringify`. The layout is written by the
 * functions below, which `InsertRecords` (toRecord.ts) also uses for the stream's inserts.
 */
export function serializeEvent(event: ChangeEvent, keyJson: string | null): string {
  if (event.transaction !== undefined || event.deadletter !== undefined) return J(event);
  const s = event.source;
  return (
    eventHeadJson(row(event.before), row(event.after)) +
    sourceHeadJson(s) +
    sourcePositionJson(s.lsn, s.sequence) +
    sourceTailJson(s) +
    eventTailJson(event.op, event.ts_ms, keyJson ?? 'null', event.old_key)
  );
}

/** From the event's opening brace to `"source":`. */
export function eventHeadJson(beforeJson: string, afterJson: string): string {
  return `{"before":${beforeJson},"after":${afterJson},"source":`;
}

/** After `source`: the op, the reader's clock, the key and the previous key, and the closing brace. */
export function eventTailJson(op: ChangeOp, nowMs: number, keyJson: string, oldKey: RowImage | undefined): string {
  return `,"op":${J(op)},"ts_ms":${eventClockJson(nowMs)},"key":${keyJson}${oldKey === undefined ? '' : `,"old_key":${J(oldKey)}`}}`;
}

/** The reader's clock (`Date.now()`, the event's `ts_ms`) as `num` prints it: the same for every event of a millisecond, so the last text is kept. */
let lastClock = NaN;
let lastClockText = 'null';
export function eventClockJson(n: number): string {
  if (n !== lastClock) {
    lastClockText = num(n);
    lastClock = n;
  }
  return lastClockText;
}

/** `source` from its opening brace to `txId` and the comma after it: the same for a transaction's changes of one table. */
export function sourceHeadJson(s: ChangeEvent['source']): string {
  return `${sourceOpenJson(s)}${tsMs(s.ts_ms)}${sourceNamesJson(s)}${num(s.txId)},`;
}

/** `source` from its opening brace to the `ts_ms` value: the same in every event of a server. */
export function sourceOpenJson(s: ChangeEvent['source']): string {
  return `{"version":${name(s.version)},"connector":${name(s.connector)},"name":${name(s.name)},"ts_ms":`;
}

/** `source` after the `ts_ms` value up to the `txId` value: the same for a table's changes. */
export function sourceNamesJson(s: ChangeEvent['source']): string {
  return `,"snapshot":${name(s.snapshot)},"db":${name(s.db)},"schema":${name(s.schema)},"table":${name(s.table)},"txId":`;
}

/** `source.ts_ms`'s value, as `sourceHeadJson` prints it. */
export const sourceTsJson: (n: number | null | undefined) => string = tsMs;
/** `source.txId`'s value, as `sourceHeadJson` prints it. */
export const sourceTxIdJson: (n: number | null | undefined) => string = num;

/** `source.lsn` and `source.sequence`: the change's own position. */
export function sourcePositionJson(lsn: number | null | undefined, sequence: string | null): string {
  return `"lsn":${num(lsn)},"sequence":${str(sequence)}`;
}

const MAX_SAFE_LSN = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * The JSON of `sequenceOf(lastCommitLsn, …)` up to the change's own LSN: the same for a transaction's
 * changes. A bigint's digits need no escaping, so it is the text with its quotes escaped.
 */
export function sequenceOpenJson(lastCommitLsn: Lsn | null): string {
  return lastCommitLsn === null ? '"[null,\\"' : `"[\\"${lsnDigits(lastCommitLsn)}\\",\\"`;
}

/**
 * A WAL position's decimal digits. A transaction's commit LSN is printed in its `commit_lsn` and again
 * in the next transaction's `sequence`, so the last two are kept.
 */
let digitsA: Lsn = -1n;
let digitsAText = '';
let digitsB: Lsn = -1n;
let digitsBText = '';
function lsnDigits(lsn: Lsn): string {
  if (lsn === digitsA) return digitsAText;
  if (lsn === digitsB) return digitsBText;
  digitsB = digitsA;
  digitsBText = digitsAText;
  digitsA = lsn;
  digitsAText = String(lsn);
  return digitsAText;
}

/** `source.commit_lsn` with its leading comma, from the LSN itself: `commitLsnJson(Number(lsn))`, the same text. */
export function commitLsnDigitsJson(lsn: Lsn): string {
  return lsn > MAX_SAFE_LSN ? commitLsnJson(Number(lsn)) : `,"commit_lsn":${lsnDigits(lsn)}`;
}

/**
 * `sourcePositionJson(Number(lsn), sequenceOf(lastCommitLsn, lsn))`, the same text, given `open` =
 * `sequenceOpenJson(lastCommitLsn)`: the LSN's digits are printed once (an LSN up to 2^53 prints the
 * same as a number and as a bigint).
 */
export function positionJson(open: string, lastCommitLsn: Lsn | null, lsn: Lsn): string {
  if (lsn > MAX_SAFE_LSN) return sourcePositionJson(Number(lsn), sequenceOf(lastCommitLsn, lsn));
  const digits = String(lsn);
  return `"lsn":${digits},"sequence":${open}${digits}\\"]"`;
}

/** `source` after `sequence`, up to its closing brace. */
export function sourceTailJson(s: ChangeEvent['source']): string {
  return `${s.commit_lsn === undefined ? '' : commitLsnJson(s.commit_lsn)}${sourceRestJson(s)}`;
}

/** `source.commit_lsn` with its leading comma. */
export function commitLsnJson(commitLsn: number | null): string {
  return `,"commit_lsn":${num(commitLsn)}`;
}

/** `source` after `commit_lsn` up to its closing brace: the same for a table's changes of one kind. */
export function sourceRestJson(s: ChangeEvent['source']): string {
  return (
    `${s.unchanged_toast === undefined ? '' : `,"unchanged_toast":${J(s.unchanged_toast)}`}` +
    `${s.types === undefined ? '' : `,"types":${types(s.types)}`}${s.renamed_to === undefined ? '' : `,"renamed_to":${J(s.renamed_to)}`}}`
  );
}

/** The Kafka record key: the key columns as JSON, in key-column order (Debezium's key without schema). */
export function recordKey(key: RowImage | null): Buffer | undefined {
  return key === null ? undefined : Buffer.from(JSON.stringify(key));
}

/**
 * Resolves the destination topic for a table. Kafka topic and event hub names allow letters, digits,
 * `.`, `_` and `-` only: any other character of a schema or table name becomes `_` (as Debezium does).
 */
export function topicFor(schema: string, table: string, opts: { topic: string; template: string | null; prefix: string }): string {
  if (opts.template === null) return opts.topic;
  const safe = (x: string) => x.replace(/[^A-Za-z0-9._-]/g, '_');
  return opts.template.replaceAll('{prefix}', safe(opts.prefix)).replaceAll('{schema}', safe(schema)).replaceAll('{table}', safe(table)).slice(0, 249);
}
