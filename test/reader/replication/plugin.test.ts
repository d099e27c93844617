import { describe, expect, test } from '@jest/globals';
import { parseLsn } from '../../../src/reader/lsn.js';
import { BeginMessage, CommitMessage, InsertMessage, TextPgoutputPlugin } from '../../../src/reader/replication/plugin.js';
import { PgoutputPlugin } from 'pg-logical-replication';
import type { Pgoutput } from 'pg-logical-replication';

describe('pgoutput Begin/Commit decoded without strings (TextPgoutputPlugin)', () => {
  const reference = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
  const ours = new TextPgoutputPlugin('p');
  const begin = (hi: number, lo: number, timeHi: number, timeLo: number, xid: number) => {
    const b = Buffer.alloc(21);
    b[0] = 0x42;
    b.writeUInt32BE(hi, 1);
    b.writeUInt32BE(lo, 5);
    b.writeUInt32BE(timeHi, 9);
    b.writeUInt32BE(timeLo, 13);
    b.writeInt32BE(xid, 17);
    return b;
  };
  const commit = (hi: number, lo: number, endHi: number, endLo: number, timeHi: number, timeLo: number) => {
    const b = Buffer.alloc(26);
    b[0] = 0x43;
    b.writeUInt32BE(hi, 2);
    b.writeUInt32BE(lo, 6);
    b.writeUInt32BE(endHi, 10);
    b.writeUInt32BE(endLo, 14);
    b.writeUInt32BE(timeHi, 18);
    b.writeUInt32BE(timeLo, 22);
    return b;
  };
  test('same fields as the library parser, plus exact numbers', () => {
    const cases: [number, number, number, number, number][] = [
      [0x16, 0xb374d848, 0x0002c3a1, 0x12345678, 771],
      [0, 0, 0x0002c3a1, 0xffffffff, 2147483647],
      [0xffffffff, 0xfffffff0, 0x00030000, 1, 1],
    ];
    for (const [hi, lo, th, tl, xid] of cases) {
      const b = begin(hi, lo, th, tl, xid);
      const want = reference.parse(b) as Pgoutput.MessageBegin;
      const got = ours.parse(b);
      expect(got).toBeInstanceOf(BeginMessage);
      const m = got as BeginMessage;
      expect({ tag: m.tag, commitLsn: m.commitLsn, commitTime: m.commitTime, xid: m.xid }).toEqual(want);
      expect(m.commitLsnValue).toBe(want.commitLsn === null ? 0n : parseLsn(want.commitLsn));
      expect(m.commitTimeMs).toBe(Number(want.commitTime) / 1000);
      const c = commit(hi, lo, hi, lo + 8 > 0xffffffff ? lo : lo + 8, th, tl);
      const wantC = reference.parse(c) as Pgoutput.MessageCommit;
      const gotC = ours.parse(c) as CommitMessage;
      expect(gotC).toBeInstanceOf(CommitMessage);
      expect({ tag: gotC.tag, flags: gotC.flags, commitLsn: gotC.commitLsn, commitEndLsn: gotC.commitEndLsn, commitTime: gotC.commitTime }).toEqual(wantC);
    }
  });
});

describe('pgoutput Insert read into column texts (TextPgoutputPlugin)', () => {
  const relation = (oid: number, columns: string[]) => {
    const parts: Buffer[] = [Buffer.from([0x52]), Buffer.alloc(4), Buffer.from('public\0items\0'), Buffer.from([0x64]), Buffer.alloc(2)];
    parts[1]!.writeInt32BE(oid);
    parts[4]!.writeInt16BE(columns.length);
    for (const [i, name] of columns.entries()) {
      const c = Buffer.alloc(9);
      c[0] = i === 0 ? 1 : 0;
      c.writeInt32BE(25, 1); // text
      c.writeInt32BE(-1, 5);
      parts.push(c.subarray(0, 1), Buffer.from(`${name}\0`), c.subarray(1));
    }
    return Buffer.concat(parts);
  };
  type Value = { t: string } | { b: Buffer } | 'n' | 'u';
  const insert = (oid: number, values: Value[]) => {
    const head = Buffer.alloc(8);
    head[0] = 0x49;
    head.writeInt32BE(oid, 1);
    head[5] = 0x4e;
    head.writeInt16BE(values.length, 6);
    const parts: Buffer[] = [head];
    for (const v of values) {
      if (v === 'n' || v === 'u') parts.push(Buffer.from(v));
      else {
        const bytes = 't' in v ? Buffer.from(v.t) : v.b;
        const h = Buffer.alloc(5);
        h[0] = 't' in v ? 0x74 : 0x62;
        h.writeInt32BE(bytes.length, 1);
        parts.push(h, bytes);
      }
    }
    return Buffer.concat(parts);
  };

  test('the same tuple as the library parser with text values; the values are read at parse time', () => {
    const reference = new PgoutputPlugin({ protoVersion: 1, publicationNames: ['p'] });
    const ours = new TextPgoutputPlugin('p');
    const rel = relation(16384, ['id', 'note', 'doc', 'blob', 'gone']);
    reference.parse(rel);
    ours.parse(rel);
    // The library's column parsers are the identity in ours (text stays text); the reference's would parse.
    const refRel = (reference as unknown as { parser: { _relationCache: Map<number, Pgoutput.MessageRelation> } }).parser._relationCache.get(16384)!;
    for (const c of refRel.columns) c.parser = (raw: unknown) => raw;
    const rows: Value[][] = [
      [{ t: '1' }, { t: 'é 😀 "q" \\' }, 'n', { b: Buffer.from([0, 255]) }, 'u'],
      [{ t: '2' }, { t: '' }],
    ];
    for (const row of rows) {
      const b = insert(16384, row);
      const want = reference.parse(b) as Pgoutput.MessageInsert;
      const got = ours.parse(b);
      expect(got).toBeInstanceOf(InsertMessage);
      const m = got as InsertMessage;
      expect(m.relation.relationOid).toBe(16384);
      expect(Object.getPrototypeOf(m.new)).toBeNull();
      expect({ ...m.new }).toEqual({ ...want.new });
      expect(Object.keys(m.new)).toEqual(Object.keys(want.new));
      const before = structuredClone(m.values);
      b.fill(0); // pg-protocol reuses its read buffer: nothing may be read from it later
      expect(m.values).toEqual(before);
    }
  });

  test('an unknown relation or a tuple wider than its relation: an error', () => {
    const ours = new TextPgoutputPlugin('p');
    expect(() => ours.parse(insert(1, [{ t: '1' }]))).toThrow('missing relation');
    ours.parse(relation(2, ['id']));
    expect(() => ours.parse(insert(2, [{ t: '1' }, { t: '2' }]))).toThrow('insert into relation 2 has 2 columns, its Relation message 1');
  });
});
