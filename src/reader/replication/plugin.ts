/**
 * pgoutput through pg-logical-replication, with two changes to its plugin:
 * - column values stay PostgreSQL text (the reader decodes them itself, exactly: pg's global type
 *   parsers would turn numeric/int8/timestamptz into lossy JS values);
 * - START_REPLICATION quotes the slot and publication names;
 * - Begin and Commit (two of the three messages of every single-row transaction) are decoded here into
 *   numbers: the library would format each LSN as a hex string and each time as a BigInt, which the
 *   reader only parsed back. The string/BigInt fields stay available as lazy getters.
 * - Insert (the third, and every row of a bulk load) is read here into an array of its column texts
 *   (`InsertMessage.values`), in column order: the library builds a null-prototype object keyed by
 *   column name (dictionary-mode, slow to fill and to read), which the reader only walked by the
 *   relation's columns again. Its `new` tuple stays available, built on demand. The texts are read when
 *   the message is parsed, never later: pg-protocol reuses its read buffer, so a message's bytes may be
 *   overwritten once the next socket chunk arrives (a message waits in the stream's queue while the
 *   socket is paused).
 */
import { PgoutputPlugin } from 'pg-logical-replication';
import type { Pgoutput } from 'pg-logical-replication';
import type { Client } from 'pg';
import { quoteIdent, quoteLiteral } from '../../shared/core/sql.js';
import type { Lsn } from '../lsn.js';

const identity = (raw: unknown): unknown => raw;

/** µs between 1970-01-01 and PostgreSQL's epoch 2000-01-01. */
const PG_EPOCH_US = 946_684_800_000_000;

/** The Int64 WAL position at `at` (through a number while that is exact: a BigInt shift is slower). */
export function lsnAt(b: Buffer, at: number): Lsn {
  const hi = b.readUInt32BE(at);
  const lo = b.readUInt32BE(at + 4);
  return hi < 0x200000 ? BigInt(hi * 4294967296 + lo) : (BigInt(hi) << 32n) | BigInt(lo);
}

/** µs since 1970 (exact: below 2^53). */
function timeUsAt(b: Buffer, at: number): number {
  return b.readUInt32BE(at) * 4294967296 + b.readUInt32BE(at + 4) + PG_EPOCH_US;
}

function lsnText(lsn: Lsn): string | null {
  if (lsn === 0n) return null;
  return `${(lsn >> 32n).toString(16).padStart(8, '0')}/${(lsn & 0xffffffffn).toString(16).padStart(8, '0')}`.toUpperCase();
}

/** pgoutput Begin: Int64 final LSN, Int64 commit time (µs since 2000), Int32 xid. */
export class BeginMessage implements Pgoutput.MessageBegin {
  readonly tag = 'begin' as const;
  /** The transaction's commit LSN (0n when absent). */
  readonly commitLsnValue: Lsn;
  /** Commit time, ms since 1970 (fractional part: µs). */
  readonly commitTimeMs: number;
  readonly xid: number;
  private readonly timeUs: number;
  constructor(b: Buffer) {
    this.commitLsnValue = lsnAt(b, 1);
    this.timeUs = timeUsAt(b, 9);
    this.commitTimeMs = this.timeUs / 1000;
    this.xid = b.readInt32BE(17);
  }
  get commitLsn(): string | null {
    return lsnText(this.commitLsnValue);
  }
  get commitTime(): bigint {
    return BigInt(this.timeUs);
  }
}

/** pgoutput Commit: Int8 flags, Int64 commit LSN, Int64 end LSN, Int64 commit time. Nothing of it is needed on the hot path. */
export class CommitMessage implements Pgoutput.MessageCommit {
  readonly tag = 'commit' as const;
  readonly flags: number;
  constructor(private readonly b: Buffer) {
    this.flags = b.readUInt8(1);
  }
  get commitLsn(): string | null {
    return lsnText(lsnAt(this.b, 2));
  }
  get commitEndLsn(): string | null {
    return lsnText(lsnAt(this.b, 10));
  }
  get commitTime(): bigint {
    return BigInt(timeUsAt(this.b, 18));
  }
}

/** A column value of a tuple: text, null, undefined (an unchanged TOAST value, not sent), or binary ('b', not requested). */
export type TupleValue = string | Buffer | null | undefined;

/**
 * pgoutput Insert: Int32 relation OID, Byte1 'N', TupleData (Int16 column count; per column Byte1 kind
 * 'n' null, 'u' unchanged TOAST, 't' text or 'b' binary followed by Int32 length and the bytes).
 */
export class InsertMessage implements Pgoutput.MessageInsert {
  readonly tag = 'insert' as const;
  /** The column values in the relation's column order (the tuple's count, which may be fewer). */
  readonly values: TupleValue[];
  private tuple: Record<string, unknown> | undefined;
  constructor(
    readonly relation: Pgoutput.MessageRelation,
    b: Buffer,
  ) {
    const columns = relation.columns;
    const n = b.readInt16BE(6);
    if (n > columns.length) throw new Error(`insert into relation ${relation.relationOid} has ${n} columns, its Relation message ${columns.length}`);
    const values = new Array<TupleValue>(n);
    let p = 8;
    for (let i = 0; i < n; i++) {
      const kind = b[p++];
      if (kind === 0x74 /* t */ || kind === 0x62 /* b */) {
        const len = b.readInt32BE(p);
        p += 4;
        // 'b' is copied: the bytes under it are not ours to keep (see the file comment).
        values[i] = kind === 0x74 ? b.toString('utf8', p, p + len) : Buffer.from(b.subarray(p, p + len));
        p += len;
      } else if (kind === 0x6e /* n */) values[i] = null;
      else if (kind === 0x75 /* u */) values[i] = undefined;
      else throw new Error(`unknown attribute kind ${String.fromCharCode(kind ?? 0)}`);
    }
    this.values = values;
  }
  /** The library's tuple: `{ column: value }`, null-prototype, as its parser builds it (its column parsers are the identity here). */
  get new(): Record<string, unknown> {
    if (this.tuple === undefined) {
      const t = Object.create(null) as Record<string, unknown>;
      for (let i = 0; i < this.values.length; i++) t[this.relation.columns[i]!.name] = this.values[i];
      this.tuple = t;
    }
    return this.tuple;
  }
}

export class TextPgoutputPlugin extends PgoutputPlugin {
  constructor(private readonly publication: string) {
    super({ protoVersion: 1, publicationNames: [publication], messages: true });
  }

  override parse(buffer: Buffer): Pgoutput.Message {
    if (buffer[0] === 0x42 /* B */ && buffer.length >= 21) return new BeginMessage(buffer);
    if (buffer[0] === 0x43 /* C */ && buffer.length >= 26) return new CommitMessage(buffer);
    if (buffer[0] === 0x49 /* I */ && buffer.length >= 8 && buffer[5] === 0x4e /* N */)
      return new InsertMessage(this.cachedRelation(buffer.readInt32BE(1)), buffer);
    const msg = super.parse(buffer);
    if (msg.tag === 'relation') for (const c of msg.columns) c.parser = identity;
    return msg;
  }

  /** The Relation message the library's parser holds for this OID (it reads every Relation message). */
  private cachedRelation(oid: number): Pgoutput.MessageRelation {
    const cache = (this as unknown as { parser: { _relationCache: Map<number, Pgoutput.MessageRelation> } }).parser._relationCache;
    const relation = cache.get(oid);
    if (!relation) throw new Error('missing relation');
    return relation;
  }

  override start(client: Client, slotName: string, lastLsn: string): Promise<unknown> {
    const options = [`proto_version '1'`, `publication_names ${quoteLiteral(quoteIdent(this.publication))}`, `messages 'true'`];
    return client.query(`START_REPLICATION SLOT ${quoteIdent(slotName)} LOGICAL ${lastLsn} (${options.join(', ')})`);
  }
}
