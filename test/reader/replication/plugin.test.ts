import { describe, expect, test } from '@jest/globals';
import { parseLsn } from '../../../src/reader/lsn.js';
import { BeginMessage, CommitMessage, TextPgoutputPlugin } from '../../../src/reader/replication/plugin.js';
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
