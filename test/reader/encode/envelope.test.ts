import { describe, expect, test } from '@jest/globals';
import { decodeJson } from '../../../src/shared/events/pgTypes.js';
import {
  buildEnvelope,
  commitLsnDigitsJson,
  commitLsnJson,
  recordKey,
  sequenceOf,
  sequenceOpenJson,
  serializeEvent,
  sourceTsJson,
  topicFor,
} from '../../../src/reader/encode/envelope.js';

describe('envelope', () => {
  test('Debezium fields, LSNs as numbers, key as record key', () => {
    const e = buildEnvelope({
      op: 'u',
      serverName: 's',
      db: 'd',
      schema: 'a',
      table: 'b',
      before: { id: 1 },
      after: { id: 1, v: 2 },
      key: { id: 1 },
      lsn: 100n,
      commitLsn: 120n,
      lastCommitLsn: 90n,
      txId: 7,
      sourceTsMs: 1,
      snapshot: 'false',
      nowMs: 2,
    });
    expect(e.source).toMatchObject({ connector: 'postgresql', lsn: 100, commit_lsn: 120, sequence: '["90","100"]', txId: 7 });
    expect(recordKey(e.key)!.toString()).toBe('{"id":1}');
    expect(topicFor('sales', 'orders', { topic: 't', template: '{prefix}.{schema}.{table}', prefix: 'p' })).toBe('p.sales.orders');
    expect(topicFor('sales', 'orders', { topic: 't', template: null, prefix: 'p' })).toBe('t');
    expect(topicFor('My "S"', 'x;drop table y', { topic: 't', template: '{prefix}.{schema}.{table}', prefix: 'p' })).toBe('p.My__S_.x_drop_table_y');
  });
});

describe('serializeEvent (hand-assembled envelope JSON)', () => {
  const base = {
    serverName: 'pg"cdc',
    db: 'postgres',
    schema: 'My Schema',
    table: 'weird\u2028"name',
    lsn: 24023128n,
    commitLsn: 24023320n,
    lastCommitLsn: 24022904n,
    txId: 771,
    sourceTsMs: 1732170000123.456,
    snapshot: 'false' as const,
    nowMs: 1732170000130,
  };
  const json = decodeJson('{"big": 12345678901234567890, "s": "\\u00e9\\n", "a": [1, null, {"x": 1.50}]}');
  const cases = [
    buildEnvelope({ ...base, op: 'c', before: null, after: { id: 1, t: 'é "q" \\ \n', j: json, n: null, f: 'NaN', arr: [1, null, 3] }, key: { id: 1 } }),
    buildEnvelope({ ...base, op: 'u', before: { id: 1, v: 'a' }, after: { id: 1 }, key: { id: 1 }, unchangedToast: ['doc', 'x"y'] }),
    buildEnvelope({
      ...base,
      op: 'c',
      before: null,
      after: { id: 1, f: 1 },
      key: { id: 1 },
      unchangedToast: ['doc'],
      columnTypes: { f: 'float8', 'x"y': 'a.b[]' },
    }),
    buildEnvelope({ ...base, op: 'c', before: null, after: { id: 2 }, key: { id: 2 }, unchangedToast: ['doc'], columnTypes: {}, oldKey: { id: 1 } }),
    buildEnvelope({ ...base, op: 'd', before: { id: '9007199254740993' }, after: null, key: { id: '9007199254740993' } }),
    buildEnvelope({ ...base, op: 't', before: null, after: null, key: null, lastCommitLsn: null }),
    buildEnvelope({
      ...base,
      op: 'r',
      before: null,
      after: { id: 2 },
      key: { a: 1, b: 'x' },
      commitLsn: null,
      lastCommitLsn: null,
      txId: null,
      snapshot: 'true',
      sourceTsMs: Number.NaN,
    }),
  ];
  test('every op: byte-identical to JSON.stringify', () => {
    for (const e of cases) expect(serializeEvent(e, e.key === null ? null : JSON.stringify(e.key))).toBe(JSON.stringify(e));
  });
  test('byte-identical also when consecutive events share or change the commit time and previous commit (the texts kept between events)', () => {
    const times = [1_700_000_000_123.456, 1_700_000_000_123.456, 1_700_000_000_124, Number.NaN, 1_700_000_000_124, 0.5];
    const prev = [90n, 90n, null, 91n, 91n, null];
    times.forEach((sourceTsMs, i) => {
      const e = buildEnvelope({
        ...base,
        op: 'c',
        before: null,
        after: { id: i },
        key: { id: i },
        sourceTsMs,
        lastCommitLsn: prev[i] ?? null,
        lsn: BigInt(100 + i),
      });
      expect(serializeEvent(e, JSON.stringify(e.key))).toBe(JSON.stringify(e));
    });
  });
  test('events with other fields fall back to JSON.stringify', () => {
    const e = { ...cases[0]!, deadletter: { container: 'c', blob: 'b', bytes: 3 } };
    expect(serializeEvent(e, JSON.stringify(e.key))).toBe(JSON.stringify(e));
  });
});

describe('source.ts_ms and LSN digits (printed from integer parts)', () => {
  test('a commit time of whole microseconds prints exactly as String(n), whatever the last one printed was', () => {
    const now = 1_764_759_664_123_456; // µs since 1970
    const micros: number[] = [0, 1, 10, 100, 999, 1000, 1001, 1010, 1100, 123_456, now, now + 1, now + 10, now + 100, now + 1000, now + 990, now + 999];
    for (let i = 0; i < 20_000; i++) micros.push(now + Math.floor(Math.random() * 1e12) - 5e11, Math.floor(Math.random() * 2 ** 53));
    // Near the end of the exact range (2^43 ms) and past it.
    for (let u = 2 ** 43 * 1000 - 2000; u < 2 ** 43 * 1000 + 2000; u += 7) micros.push(u);
    for (const u of micros) {
      const n = u / 1000;
      expect(sourceTsJson(n)).toBe(String(n));
      expect(sourceTsJson(n)).toBe(String(n)); // the kept text
    }
  });

  test('other numbers: not whole microseconds, negative, non-finite', () => {
    for (const n of [1_764_759_664_123.457 + 0.0003, 0.1, 0.0001, 1e-7, -1.5, -0, 2 ** 52 + 0.5, 1e21, 1.5e300, Number.MIN_VALUE])
      expect(sourceTsJson(n)).toBe(String(n));
    for (const n of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, null, undefined]) expect(sourceTsJson(n)).toBe('null');
  });

  test('commit_lsn from the LSN itself is the text of its number, past 2^53 too; the sequence reuses the digits', () => {
    for (const lsn of [0n, 1n, 2n ** 32n + 5n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 60n + 3n, 2n ** 64n - 1n]) {
      expect(commitLsnDigitsJson(lsn)).toBe(commitLsnJson(Number(lsn)));
      expect(sequenceOpenJson(lsn)).toBe(JSON.stringify(sequenceOf(lsn, 7n)).slice(0, -1 - '7\\"]'.length));
    }
    expect(sequenceOpenJson(null)).toBe(JSON.stringify(sequenceOf(null, 7n)).slice(0, -1 - '7\\"]'.length));
  });
});
