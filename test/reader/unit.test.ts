import { describe, expect, test } from '@jest/globals';
import { ConfigError, loadConfig, parseTableList, secretsOf } from '../../src/reader/config.js';
import { AckTracker } from '../../src/reader/publish/ackTracker.js';
import { Pipeline } from '../../src/reader/publish/pipeline.js';
import type { OutRecord, Publisher } from '../../src/reader/publish/publisher.js';
import { memoryLogger, createLogger } from '../../src/reader/logger.js';
import { formatLsn, parseLsn } from '../../src/reader/lsn.js';
import { redact } from '../../src/reader/redact.js';
import {
  decodeBytea,
  decodeFloat,
  decodeInt8,
  decodeJson,
  decodeTimestamp,
  decodeTimestamptz,
  parseArray,
  decodeInt,
} from '../../src/reader/encode/pgTypes.js';
import { buildEnvelope, recordKey, serializeEvent, topicFor } from '../../src/reader/encode/envelope.js';
import { quoteIdent, quoteLiteral } from '../../src/reader/replication/sql.js';
import { BeginMessage, CommitMessage, TextPgoutputPlugin } from '../../src/reader/replication/plugin.js';
import { PgoutputPlugin } from 'pg-logical-replication';
import type { Pgoutput } from 'pg-logical-replication';
import { eventually } from '../helpers/services.js';

const base = { KAFKA_BROKERS: 'localhost:9092' };

describe('config', () => {
  test('defaults', () => {
    const c = loadConfig(base);
    expect(c).toMatchObject({
      slotName: 'pg_cdc_reader',
      publicationName: 'pg_cdc_publication',
      tables: null,
      snapshotMode: 'initial',
      topic: 'cdc-events',
      topicTemplate: null,
    });
    expect(c.kafka).toMatchObject({
      brokers: ['localhost:9092'],
      securityProtocol: 'PLAINTEXT',
      maxMessageBytes: 1_000_000,
      requestTimeoutMs: 60_000,
      metadataMaxAgeMs: 180_000,
    });
  });

  test.each([
    [{}, 'KAFKA_BROKERS'],
    [{ ...base, KAFKA_BROKERS: 'nohostport' }, 'KAFKA_BROKERS'],
    [{ ...base, CDC_SNAPSHOT_MODE: 'sometimes' }, 'CDC_SNAPSHOT_MODE'],
    [{ ...base, CDC_SLOT: 'Bad-Slot' }, 'CDC_SLOT'],
    [{ ...base, PGPORT: 'x' }, 'PGPORT'],
    [{ ...base, KAFKA_MAX_MESSAGE_BYTES: '2000000' }, 'KAFKA_MAX_MESSAGE_BYTES'],
    [{ ...base, KAFKA_REQUEST_TIMEOUT_MS: '1000' }, 'KAFKA_REQUEST_TIMEOUT_MS'],
    [{ ...base, CDC_TOPIC_TEMPLATE: '{prefix}.{schema}' }, 'CDC_TOPIC_TEMPLATE'],
    [{ ...base, KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' }, 'KAFKA_SASL_PASSWORD'],
    [{ ...base, CDC_TABLES: 'nodot' }, 'CDC_TABLES'],
    [{ ...base, DEADLETTER_CONTAINER: 'Bad_Name' }, 'DEADLETTER_CONTAINER'],
  ])('invalid %j names %s', (env, variable) => {
    let err: unknown;
    try {
      loadConfig(env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).variable).toBe(variable);
    expect((err as Error).message).toContain(variable);
    expect((err as Error).message).toMatch(/expected/);
  });

  test('Event Hubs connection string: brokers, SASL_SSL/PLAIN, redacted', () => {
    const cs = 'Endpoint=sb://myns.servicebus.windows.net/;SharedAccessKeyName=send;SharedAccessKey=c2VjcmV0c2VjcmV0';
    const c = loadConfig({ EVENTHUBS_CONNECTION_STRING: cs });
    expect(c.kafka).toMatchObject({
      brokers: ['myns.servicebus.windows.net:9093'],
      securityProtocol: 'SASL_SSL',
      saslMechanism: 'PLAIN',
      saslUsername: '$ConnectionString',
      saslPassword: cs,
    });
    expect(secretsOf(c)).toContain(cs);
    const lines: string[] = [];
    const log = createLogger({ secrets: secretsOf(c), write: (l) => lines.push(l) });
    log.error('failed', { error: `connect failed with ${cs}` });
    expect(lines.join('\n')).not.toContain('c2VjcmV0c2VjcmV0');
  });

  test('a secret in a bad value is not echoed', () => {
    expect(() => loadConfig({ EVENTHUBS_CONNECTION_STRING: 'SharedAccessKey=topsecret' })).toThrow(/redacted/);
  });

  test('table list: quoting, case folding, weird names', () => {
    expect(parseTableList('retail.orders_info, Bank.Holding')).toEqual([
      { schema: 'retail', table: 'orders_info' },
      { schema: 'bank', table: 'holding' },
    ]);
    expect(parseTableList('"My Schema"."Weird Name","s"."x;drop table y"')).toEqual([
      { schema: 'My Schema', table: 'Weird Name' },
      { schema: 's', table: 'x;drop table y' },
    ]);
    expect(parseTableList('"a""b".c')).toEqual([{ schema: 'a"b', table: 'c' }]);
    expect(() => parseTableList('a.b.c')).toThrow(ConfigError);
  });
});

describe('redaction', () => {
  test('connection-string keys and URL passwords', () => {
    expect(redact('AccountName=x;AccountKey=abc123==;Endpoint')).toBe('AccountName=x;AccountKey=***;Endpoint');
    expect(redact('postgres://user:hunter2@host/db')).toBe('postgres://user:***@host/db');
    expect(redact('the value is s3cr3tvalue', ['s3cr3tvalue'])).toBe('the value is ***');
  });
  test('memory logger keeps structured lines', () => {
    const log = memoryLogger();
    log.child({ a: 1 }).info('hello', { b: 2n });
    expect(log.lines[0]).toMatchObject({ level: 'info', msg: 'hello', a: 1, b: '2' });
  });
});

describe('identifiers', () => {
  test('quoteIdent / quoteLiteral', () => {
    expect(quoteIdent('x;drop table y')).toBe('"x;drop table y"');
    expect(quoteIdent('a"b')).toBe('"a""b"');
    expect(quoteLiteral("it's")).toBe("'it''s'");
  });
});

describe('lsn', () => {
  test('round trip', () => {
    expect(parseLsn('16/B374D848')).toBe(0x16b374d848n);
    expect(formatLsn(0x16b374d848n)).toBe('16/B374D848');
    expect(() => parseLsn('nope')).toThrow();
  });
});

describe('type decoding', () => {
  test('int8 exact: number while safe, string beyond 2^53', () => {
    expect(decodeInt8('9007199254740991')).toBe(9007199254740991);
    expect(decodeInt8('9007199254740993')).toBe('9007199254740993');
    expect(decodeInt8('-9223372036854775808')).toBe('-9223372036854775808');
  });
  test('floats', () => {
    expect(decodeFloat('1.5')).toBe(1.5);
    expect(decodeFloat('NaN')).toBe('NaN');
    expect(decodeFloat('-Infinity')).toBe('-Infinity');
  });
  test('timestamps', () => {
    expect(decodeTimestamptz('2024-05-01 10:00:00.123456+00')).toBe('2024-05-01T10:00:00.123456Z');
    expect(decodeTimestamptz('2024-05-01 10:00:00+05:30')).toBe('2024-05-01T04:30:00Z');
    expect(decodeTimestamptz('2024-05-01 01:00:00.5-02')).toBe('2024-05-01T03:00:00.5Z');
    expect(decodeTimestamptz('infinity')).toBe('infinity');
    expect(decodeTimestamp('2024-05-01 10:00:00.000001')).toBe('2024-05-01T10:00:00.000001');
  });
  test('bytea → base64', () => {
    expect(decodeBytea('\\x00ff10')).toBe(Buffer.from([0, 255, 16]).toString('base64'));
  });
  test('json keeps exact numbers', () => {
    expect(JSON.stringify(decodeJson('{"a": 12345678901234567890, "b": 1.50, "c": [1, "x"]}'))).toBe('{"a":12345678901234567890,"b":1.50,"c":[1,"x"]}');
  });
  test('arrays: nested, quoted, NULL', () => {
    expect(parseArray('{1,2,NULL}', decodeInt)).toEqual([1, 2, null]);
    expect(parseArray('{{a,b},{"c d","e\\"f"}}', (t) => t)).toEqual([
      ['a', 'b'],
      ['c d', 'e"f'],
    ]);
    expect(parseArray('{}', (t) => t)).toEqual([]);
    expect(parseArray('{"NULL",NULL}', (t) => t)).toEqual(['NULL', null]);
    expect(parseArray('[0:1]={7,8}', decodeInt)).toEqual([7, 8]);
  });
});

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

describe('ack tracker', () => {
  test('acknowledges the highest commit whose events and all earlier ones are confirmed', () => {
    const t = new AckTracker();
    const a = t.open();
    a.pending = 2;
    t.close(a, 10n);
    const b = t.open();
    b.pending = 1;
    t.close(b, 20n);
    const c = t.open(); // empty transaction (heartbeat)
    t.close(c, 30n);
    expect(t.ackedLsn).toBeNull();
    t.confirm(b);
    expect(t.advance()).toBeNull(); // a still pending
    t.confirm(a, 2);
    expect(t.advance()).toBe(30n);
  });
  test('an open (uncommitted) transaction blocks acknowledgement', () => {
    const t = new AckTracker(5n);
    const a = t.open();
    a.pending = 1;
    t.confirm(a);
    expect(t.advance()).toBe(5n);
    t.close(a, 9n);
    expect(t.ackedLsn).toBe(9n);
  });
});

class FakePublisher implements Publisher {
  sent: OutRecord[][] = [];
  failNext = 0;
  gate: Promise<void> | null = null;
  async send(records: OutRecord[]): Promise<void> {
    if (this.gate) await this.gate;
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('broker down');
    }
    this.sent.push(records);
  }
  async close(): Promise<void> {}
}

const rec = (n: number, size = 10): OutRecord => ({ topic: 't', key: Buffer.from(String(n)), value: Buffer.alloc(size, n % 256) });

describe('pipeline', () => {
  test('retries a failed batch before anything after it: order kept, nothing skipped', async () => {
    const pub = new FakePublisher();
    pub.failNext = 3;
    const t = new AckTracker();
    const p = new Pipeline(pub, t, memoryLogger(), { maxInflightBytes: 1 << 20, retryInitialMs: 1, retryMaxMs: 5, maxBatchRecords: 3 });
    const e = t.open();
    for (let i = 0; i < 10; i++) p.enqueue(rec(i), e);
    t.close(e, 42n);
    await p.drain();
    expect(pub.sent.flat().map((r) => r.key!.toString())).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(t.ackedLsn).toBe(42n);
    expect(p.brokerHealthy).toBe(true);
  });

  test('backpressure: saturated while the broker does not answer; in-flight bytes bounded', async () => {
    const pub = new FakePublisher();
    let open!: () => void;
    pub.gate = new Promise((r) => (open = r));
    const t = new AckTracker();
    const p = new Pipeline(pub, t, memoryLogger(), { maxInflightBytes: 1000 });
    const e = t.open();
    let produced = 0;
    const producer = (async () => {
      for (let i = 0; i < 100; i++) {
        p.enqueue(rec(i, 100), e);
        produced++;
        if (p.saturated) await p.waitForCapacity();
      }
    })();
    await eventually('pipeline saturated', () => (p.saturated && produced > 0 ? true : undefined), 2_000, 1);
    expect(p.saturated).toBe(true);
    expect(produced).toBeLessThan(10);
    pub.gate = null;
    open();
    await producer;
    await p.drain();
    expect(pub.sent.flat()).toHaveLength(100);
    expect(p.peakBytesInFlight).toBeLessThan(1000 + 200);
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
  test('events with other fields fall back to JSON.stringify', () => {
    const e = { ...cases[0]!, deadletter: { container: 'c', blob: 'b', bytes: 3 } };
    expect(serializeEvent(e, JSON.stringify(e.key))).toBe(JSON.stringify(e));
  });
});

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
