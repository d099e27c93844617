/**
 * ChangeEvent → Kafka record, with the claim-check path for events the hub cannot take (publish/claimCheck.ts).
 */
import type { ChangeEvent } from '../../shared/events/changeEvent.js';
import type { Logger } from '../../shared/core/logger.js';
import { errorFields } from '../../shared/core/logger.js';
import type { ClaimCheckStore } from '../publish/claimCheck.js';
import { claimCheckBlobName, claimCheckPointer } from '../publish/claimCheck.js';
import type { OutRecord } from '../publish/publisher.js';
import type { Lsn } from '../lsn.js';
import {
  commitLsnDigitsJson,
  EVENT_COLUMNS,
  eventHeadJson,
  eventClockJson,
  eventTailJson,
  positionJson,
  recordKey,
  sequenceOpenJson,
  serializeEvent,
  sourceHeadJson,
  sourceNamesJson,
  sourceOpenJson,
  sourcePositionJson,
  sourceRestJson,
  sourceTailJson,
  sourceTsJson,
  sourceTxIdJson,
  topicFor,
} from './envelope.js';
import type { EventWithColumns } from './envelope.js';
import type { DebeziumColumn, DebeziumSettings } from './debezium.js';
import { debeziumEventJson, debeziumKeyJson } from './debeziumEnvelope.js';
import type { RowsLayout } from './chunkRecords.js';
import { RecordBuffers, rowRecordText } from './chunkRecords.js';

/** One record (native format) or 0–2 (Debezium format: a skipped op, a delete and its tombstone). */
export type Built = OutRecord | OutRecord[];

export interface RecordBuilderOptions {
  topic: string;
  topicTemplate: string | null;
  prefix: string;
  maxMessageBytes: number;
  /** Called for every event published as a claim-check pointer (metrics). */
  onClaimCheck?: () => void;
  /** Set: records in Debezium's format with these settings (CDC_EVENT_FORMAT=debezium); unset: the native format. */
  debezium?: DebeziumSettings | undefined;
}

const ROW_MARK = '\u0000';
const KEY_MARK = '\u0001';

/**
 * The record key of a native value whose last field is the key (`…,"key":<keyJson>}`): those bytes of
 * the value, so the key is not encoded a second time.
 */
function trailingKey(value: Buffer, keyJson: string): Buffer {
  return value.subarray(value.length - 1 - Buffer.byteLength(keyJson), value.length - 1);
}

/** The record of `value` (its key the trailing `keyJson`), or null when value and key are over `limit`. */
function trailingKeyRecord(topic: string, value: Buffer, keyJson: string, limit: number): OutRecord | null {
  const key = trailingKey(value, keyJson);
  return value.length + key.length > limit ? null : { topic, key, value };
}

/** One row's record in `layout`, or null when it is too large for the hub (build the event and use `buildLarge`). */
export function layoutRecord(layout: RowsLayout, afterJson: string, keyJson: string): OutRecord | null {
  return trailingKeyRecord(layout.topic, Buffer.from(rowRecordText(layout, afterJson, keyJson)), keyJson, layout.limit);
}

export class RecordBuilder {
  /** Where the stream's insert records are written (`InsertRecords`). */
  private readonly buffers = new RecordBuffers();
  /**
   * Synchronous fast path; returns null when the event is too large (use `buildLarge`). Chosen once
   * per format in the constructor, so the native path takes no per-event format decision.
   */
  readonly tryBuild: (event: ChangeEvent) => Built | null;
  /** Writes the full event to the claim-check store (retrying until it succeeds) and returns the pointer record(s). */
  readonly buildLarge: (event: ChangeEvent) => Promise<Built>;

  constructor(
    private readonly opts: RecordBuilderOptions,
    private readonly claimCheck: ClaimCheckStore | null,
    private readonly log: Logger,
    private readonly isStopping: () => boolean = () => false,
  ) {
    const dbz = opts.debezium;
    if (dbz === undefined) {
      this.tryBuild = (event) => this.tryBuildNative(event);
      this.buildLarge = (event) => this.buildLargeNative(event);
    } else {
      this.tryBuild = (event) => this.tryBuildDebezium(event, dbz);
      this.buildLarge = (event) => this.buildLargeDebezium(event, dbz);
    }
  }

  /** The topic of `schema.table`'s events. */
  topicOf(schema: string, table: string): string {
    return topicFor(schema, table, { topic: this.opts.topic, template: this.opts.topicTemplate, prefix: this.opts.prefix });
  }

  /** The event format the records are in. */
  get format(): 'native' | 'debezium' {
    return this.opts.debezium === undefined ? 'native' : 'debezium';
  }

  private tryBuildNative(event: ChangeEvent): OutRecord | null {
    // The key's JSON serves as the record key and inside the value (serialised once).
    const keyJson = event.key === null ? null : JSON.stringify(event.key);
    const value = Buffer.from(serializeEvent(event, keyJson));
    // serializeEvent writes the key last unless an `old_key` follows (or the event is JSON.stringify'd).
    const key =
      keyJson === null
        ? undefined
        : event.old_key === undefined && event.transaction === undefined && event.deadletter === undefined
          ? trailingKey(value, keyJson)
          : Buffer.from(keyJson);
    // Record overhead (headers, lengths, batch header) stays well under 1 KiB.
    if (value.length + (key?.length ?? 0) + 1024 > this.opts.maxMessageBytes) return null;
    return { topic: this.topic(event), key, value };
  }

  private async buildLargeNative(event: ChangeEvent): Promise<OutRecord> {
    const body = Buffer.from(JSON.stringify(event));
    const where = await this.storeClaimCheck(event, body);
    const pointer = claimCheckPointer(event, where, body.length);
    return { topic: this.topic(event), key: recordKey(event.key), value: Buffer.from(JSON.stringify(pointer)) };
  }

  /**
   * Debezium format: a skipped op (`skipped.operations`) builds nothing; a delete is followed by its
   * tombstone (same key, null value) with `tombstones.on.delete`. The `d` of a key change gets one too,
   * and its `c` carries no `old_key` (as Debezium).
   */
  private tryBuildDebezium(event: ChangeEvent, s: DebeziumSettings): OutRecord[] | null {
    if (s.skippedOperations.has(event.op)) return [];
    const columns = columnsOf(event);
    const keyJson = debeziumKeyJson(event, columns, s);
    const value = Buffer.from(debeziumEventJson(event, columns, s));
    const key = keyJson === null ? undefined : Buffer.from(keyJson);
    if (value.length + (key?.length ?? 0) + 1024 > this.opts.maxMessageBytes) return null;
    return this.withTombstone(event, s, { topic: this.topic(event), key, value });
  }

  /** Debezium format, too large: the Debezium value goes to the store, the pointer is that value without row images plus `deadletter`. */
  private async buildLargeDebezium(event: ChangeEvent, s: DebeziumSettings): Promise<OutRecord[]> {
    if (s.skippedOperations.has(event.op)) return [];
    const columns = columnsOf(event);
    const body = Buffer.from(debeziumEventJson(event, columns, s));
    const where = await this.storeClaimCheck(event, body);
    const keyJson = debeziumKeyJson(event, columns, s);
    const deadletter = `,"deadletter":${JSON.stringify({ container: where.container, blob: where.blob, bytes: body.length })}`;
    const value = Buffer.from(debeziumEventJson({ ...event, before: null, after: null }, columns, s, deadletter));
    return this.withTombstone(event, s, { topic: this.topic(event), key: keyJson === null ? undefined : Buffer.from(keyJson), value });
  }

  private withTombstone(event: ChangeEvent, s: DebeziumSettings, record: OutRecord): OutRecord[] {
    return event.op === 'd' && s.tombstonesOnDelete ? [record, { topic: record.topic, key: record.key, value: null }] : [record];
  }

  /** Stores `body` (retrying until it succeeds) and tells where. */
  private async storeClaimCheck(event: ChangeEvent, body: Buffer): Promise<{ container: string; blob: string }> {
    if (!this.claimCheck) {
      throw new Error(
        `event of ${body.length} bytes exceeds KAFKA_MAX_MESSAGE_BYTES and no claim-check store is configured (set AZURE_STORAGE_CONNECTION_STRING, DEADLETTER_CONNECTION_STRING or DEADLETTER_ACCOUNT_URL)`,
      );
    }
    const name = claimCheckBlobName(event);
    for (let attempt = 1; ; attempt++) {
      try {
        const where = await this.claimCheck.put(name, body);
        this.opts.onClaimCheck?.();
        this.log.warn('event too large for the hub: stored as a claim check, pointer published', {
          bytes: body.length,
          schema: event.source.schema,
          table: event.source.table,
          lsn: event.source.lsn,
          blob: where.blob,
        });
        return where;
      } catch (err) {
        if (this.isStopping()) throw err;
        const delay = Math.min(30_000, 250 * 2 ** Math.min(attempt, 7));
        this.log.warn('claim-check write failed; retrying', { ...errorFields(err), attempt, retryInMs: delay });
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /**
   * Native format: the records of many rows that share one envelope (a snapshot chunk: same table,
   * version, marker and clock) as data, given that envelope as `template` (its `after` and `key` are
   * ignored): each record is `layoutRecord(layout, afterJson, keyJson)`, byte-identical to
   * `tryBuild`'s for the event with that row and key, with the envelope serialised once, not per row.
   * Structured-clonable, so a snapshot reader thread writes the same bytes (chunkRecords.ts).
   * Debezium format: null (no shortcut).
   */
  rowsLayout(template: ChangeEvent): RowsLayout | null {
    if (this.opts.debezium !== undefined || template.old_key !== undefined) return null;
    // The envelope with markers where the row and the key go; JSON escapes control characters, so
    // neither marker can occur in the serialised envelope itself.
    const text =
      eventHeadJson('null', ROW_MARK) +
      sourceHeadJson(template.source) +
      sourcePositionJson(template.source.lsn, template.source.sequence) +
      sourceTailJson(template.source) +
      eventTailJson(template.op, template.ts_ms, KEY_MARK, undefined);
    const row = text.indexOf(ROW_MARK);
    const key = text.indexOf(KEY_MARK);
    if (row < 0 || key !== text.length - 2) throw new Error('unexpected envelope layout: the key must be the last field');
    return { topic: this.topic(template), head: text.slice(0, row), middle: text.slice(row + 1, key), limit: this.opts.maxMessageBytes - 1024 };
  }

  /**
   * Native format: the writer of a table's inserts in the stream (`InsertRecords`), given their
   * envelope as `template` (a `buildEnvelope` event of the table, op `c`, no old key or unchanged
   * TOAST; its row, key, transaction and position fields are ignored). Null in the Debezium format or
   * for another template.
   */
  insertRecords(template: ChangeEvent): InsertRecords | null {
    if (this.opts.debezium !== undefined || template.op !== 'c' || template.old_key !== undefined || template.source.unchanged_toast !== undefined) return null;
    return new InsertRecords(template, this.topic(template), this.opts.maxMessageBytes - 1024, this.buffers);
  }

  async build(event: ChangeEvent): Promise<Built> {
    return this.tryBuild(event) ?? (await this.buildLarge(event));
  }

  private topic(event: ChangeEvent): string {
    return this.topicOf(event.source.schema, event.source.table);
  }
}

/** The columns the stream or the snapshot attached for the Debezium encoder (envelope.ts `EnvelopeInput.columns`). */
function columnsOf(event: ChangeEvent): readonly DebeziumColumn[] {
  const columns = (event as EventWithColumns)[EVENT_COLUMNS];
  if (columns === undefined) throw new Error(`event of ${event.source.schema}.${event.source.table} without column metadata (Debezium format)`);
  return columns;
}

/** A transaction as `InsertRecords.write` needs it: the same object for all of its changes. */
export interface InsertTx {
  xid: number;
  commitLsn: Lsn;
  commitTimeMs: number;
}

/**
 * The records of a table's inserts in the stream (native format; `RecordBuilder.insertRecords`), made
 * from the row's and key's JSON without row, key or event objects (`ChangeStream.insertRecord`; the
 * saving is docs/reader.md "Benchmark", runs 14 and 18). Each record is byte-identical to `tryBuild`'s
 * for the event `buildEnvelope` makes with that row, key, transaction, LSN and clock. The envelope's
 * text is kept in three kinds of parts: the table's (made once, when the table's Relation message is
 * read), the transaction's (`ts_ms`, `txId`, `commit_lsn` and the sequence's previous commit: made at
 * its first insert into the table) and the change's (its LSN, the clock, the row and the key). With
 * single-row transactions the transaction's parts are made for every change, so they are only a few
 * concatenations.
 */
export class InsertRecords {
  /** `{"before":null,"after":` */
  private readonly head: string;
  /** `,"source":` and the source's fields up to the `ts_ms` value. */
  private readonly open: string;
  /** After the `ts_ms` value up to the `txId` value. */
  private readonly names: string;
  /** After `commit_lsn` through the source's closing brace, and the op up to the clock's value. */
  private readonly rest: string;
  private tx: InsertTx | null = null;
  private lastCommitLsn: Lsn | null = null;
  private txHead = '';
  private sequenceOpen = '';
  private txTail = '';

  constructor(
    template: ChangeEvent,
    private readonly topic: string,
    /** A record's value and key bytes together may be at most this. */
    private readonly limit: number,
    private readonly buffers: RecordBuffers,
  ) {
    const KEY = '\u0001';
    const tail = eventTailJson(template.op, 0, KEY, undefined);
    const at = tail.indexOf(',"ts_ms":');
    if (at < 0 || tail.slice(at) !== `,"ts_ms":0,"key":${KEY}}`) throw new Error('unexpected envelope layout: the clock and the key must be the last fields');
    const head = eventHeadJson('null', '');
    this.head = head.slice(0, head.lastIndexOf(',"source":'));
    this.open = `,"source":${sourceOpenJson(template.source)}`;
    this.names = sourceNamesJson(template.source);
    this.rest = `${sourceRestJson(template.source)}${tail.slice(0, at)},"ts_ms":`;
  }

  /**
   * The record of an insert of `tx` (the same object for each of its changes; `lastCommitLsn` is the
   * previous transaction's commit, `EnvelopeInput.lastCommitLsn`), or null when it is too large for the
   * hub (build the event and use `buildLarge`).
   */
  write(tx: InsertTx, lastCommitLsn: Lsn | null, afterJson: string, keyJson: string, lsn: Lsn, nowMs: number): OutRecord | null {
    if (tx !== this.tx || lastCommitLsn !== this.lastCommitLsn) {
      this.tx = tx;
      this.lastCommitLsn = lastCommitLsn;
      this.txHead = `${this.open}${sourceTsJson(tx.commitTimeMs)}${this.names}${sourceTxIdJson(tx.xid)},`;
      this.sequenceOpen = sequenceOpenJson(lastCommitLsn);
      this.txTail = `${commitLsnDigitsJson(tx.commitLsn)}${this.rest}`;
    }
    const value = this.buffers.write(
      `${this.head}${afterJson}${this.txHead}${positionJson(this.sequenceOpen, lastCommitLsn, lsn)}${this.txTail}${eventClockJson(nowMs)},"key":${keyJson}}`,
    );
    return trailingKeyRecord(this.topic, value, keyJson, this.limit);
  }
}
