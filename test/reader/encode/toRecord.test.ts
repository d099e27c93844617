/** RecordBuilder in the Debezium format: the records each event becomes under Debezium's settings. */
import { describe, expect, test } from '@jest/globals';
import { layoutRecord, RecordBuilder } from '../../../src/reader/encode/toRecord.js';
import type { Built } from '../../../src/reader/encode/toRecord.js';
import { buildEnvelope } from '../../../src/reader/encode/envelope.js';
import type { EnvelopeInput } from '../../../src/reader/encode/envelope.js';
import { DEBEZIUM_DEFAULTS } from '../../../src/reader/encode/debezium.js';
import type { DebeziumSettings } from '../../../src/reader/encode/debezium.js';
import type { ClaimCheckStore } from '../../../src/reader/publish/claimCheck.js';
import type { OutRecord } from '../../../src/reader/publish/publisher.js';
import { memoryLogger } from '../../../src/shared/core/logger.js';
import type { ChangeOp } from '../../../src/shared/events/changeEvent.js';
import { decodeBody } from '../../../src/shared/events/decode.js';

const columns = [
  { name: 'id', type: 'int8', typmod: -1 },
  { name: 'price', type: 'numeric', typmod: (10 << 16) + 2 + 4 },
  { name: 'doc', type: 'text', typmod: -1 },
];

const input = (op: ChangeOp, over: Partial<EnvelopeInput> = {}): EnvelopeInput => ({
  op,
  serverName: 'shop',
  db: 'postgres',
  schema: 'public',
  table: 'items',
  before: null,
  after: null,
  key: op === 't' ? null : { id: '9007199254740993' },
  lsn: 100n,
  commitLsn: 120n,
  lastCommitLsn: 90n,
  txId: 7,
  sourceTsMs: 1_700_000_000_123.456,
  snapshot: 'false',
  nowMs: 1_700_000_000_200,
  columns,
  ...over,
});

const builder = (s: Partial<DebeziumSettings> = {}, claimCheck: ClaimCheckStore | null = null, maxMessageBytes = 1_000_000) =>
  new RecordBuilder(
    { topic: 'unused', topicTemplate: '{prefix}.{schema}.{table}', prefix: 'shop', maxMessageBytes, debezium: { ...DEBEZIUM_DEFAULTS, ...s } },
    claimCheck,
    memoryLogger(),
  );

const records = (b: Built | null): OutRecord[] => {
  if (b === null) throw new Error('too large');
  return Array.isArray(b) ? b : [b];
};
const text = (r: OutRecord) => ({ topic: r.topic, key: r.key?.toString() ?? null, value: r.value === null ? null : r.value.toString() });

describe('RecordBuilder, Debezium format', () => {
  test('a delete: the value, then a tombstone with the same key; every column in before; exact key encoding', () => {
    const out = records(builder().tryBuild(buildEnvelope(input('d', { before: { id: '9007199254740993' } })))).map(text);
    expect(out).toHaveLength(2);
    expect(out[0]!.topic).toBe('shop.public.items');
    expect(out[0]!.key).toBe('{"id":9007199254740993}');
    expect(out[0]!.value).toContain('"before":{"id":9007199254740993,"price":null,"doc":null},"after":null,');
    expect(out[0]!.value).toContain('"sequence":"[\\"90\\",\\"100\\"]","ts_us":1700000000123456,"ts_ns":1700000000123456000,');
    expect(out[0]!.value).not.toMatch(/commit_lsn|"types"|"key"/);
    expect(out[1]).toEqual({ topic: 'shop.public.items', key: '{"id":9007199254740993}', value: null });
  });

  test('tombstones.on.delete=false: the delete alone', () => {
    expect(records(builder({ tombstonesOnDelete: false }).tryBuild(buildEnvelope(input('d', { before: { id: '1' } }))))).toHaveLength(1);
  });

  test('skipped.operations: truncates skipped by default, emitted with none (null key); any op can be skipped', () => {
    expect(builder().tryBuild(buildEnvelope(input('t')))).toEqual([]);
    const t = records(builder({ skippedOperations: new Set() }).tryBuild(buildEnvelope(input('t')))).map(text);
    expect(t).toHaveLength(1);
    expect(t[0]!.key).toBeNull();
    expect(JSON.parse(t[0]!.value!)).toMatchObject({ op: 't', before: null, after: null });
    expect(builder({ skippedOperations: new Set(['u']) }).tryBuild(buildEnvelope(input('u', { after: { id: '1', price: '1.50', doc: 'x' } })))).toEqual([]);
  });

  test('a key change create carries no old_key; an unchanged TOAST value is the placeholder', () => {
    const event = buildEnvelope(input('c', { after: { id: '2', price: '1.50' }, oldKey: { id: '1' }, unchangedToast: ['doc'] }));
    const [r, ...rest] = records(builder({ unavailableValuePlaceholder: '__gone' }).tryBuild(event)).map(text);
    expect(rest).toEqual([]);
    const value = JSON.parse(r!.value!) as Record<string, unknown>;
    expect(value).not.toHaveProperty('old_key');
    expect(value.after).toEqual({ id: 2, price: 'AJY=', doc: '__gone' });
  });

  test('too large: the Debezium value goes to the claim-check store, the pointer keeps the layout without rows', async () => {
    const stored: { name: string; body: string }[] = [];
    const store: ClaimCheckStore = {
      put: (name, body) => {
        stored.push({ name, body: body.toString() });
        return Promise.resolve({ container: 'c', blob: name });
      },
    };
    const b = builder({}, store, 1100);
    const event = buildEnvelope(input('d', { before: { id: '1', doc: 'x'.repeat(2000) } }));
    expect(b.tryBuild(event)).toBeNull();
    const out = records(await b.buildLarge(event)).map(text);
    expect(out).toHaveLength(2);
    expect(JSON.parse(stored[0]!.body)).toMatchObject({ op: 'd', before: { id: 1, doc: 'x'.repeat(2000) } });
    expect(JSON.parse(out[0]!.value!)).toMatchObject({ before: null, after: null, op: 'd', deadletter: { container: 'c', blob: stored[0]!.name } });
    expect(out[1]!.value).toBeNull();
  });

  test('with schemas: key and value are {schema, payload}; too large, the stored value and the pointer keep the wrapper, and the sinks read both', async () => {
    const stored: { name: string; body: string }[] = [];
    const store: ClaimCheckStore = {
      put: (name, body) => {
        stored.push({ name, body: body.toString() });
        return Promise.resolve({ container: 'c', blob: name });
      },
    };
    const b = builder({ valueSchemasEnable: true, keySchemasEnable: true }, store, 6000);
    const small = records(b.tryBuild(buildEnvelope(input('c', { key: { id: '1' }, after: { id: '1', price: '1.50', doc: 'x' } })))).map(text);
    const key = JSON.parse(small[0]!.key!) as { schema: { name: string; fields: unknown[] }; payload: unknown };
    expect(key).toEqual({
      schema: { type: 'struct', fields: [{ type: 'int64', optional: false, field: 'id' }], optional: false, name: 'shop.public.items.Key' },
      payload: { id: 1 },
    });
    const value = JSON.parse(small[0]!.value!) as { schema: { name: string; fields: { field: string; fields?: unknown[] }[] }; payload: { after: unknown } };
    expect(value.schema.name).toBe('shop.public.items.Envelope');
    expect(value.schema.fields.find((f) => f.field === 'after')?.fields).toEqual([
      { type: 'int64', optional: true, field: 'id' },
      {
        type: 'bytes',
        optional: true,
        name: 'org.apache.kafka.connect.data.Decimal',
        version: 1,
        parameters: { scale: '2', 'connect.decimal.precision': '10' },
        field: 'price',
      },
      { type: 'string', optional: true, field: 'doc' },
    ]);
    expect(value.payload.after).toEqual({ id: 1, price: 'AJY=', doc: 'x' });

    const event = buildEnvelope(input('c', { key: { id: '1' }, after: { id: '1', price: '1.50', doc: 'x'.repeat(8000) } }));
    expect(b.tryBuild(event)).toBeNull();
    const [pointer] = records(await b.buildLarge(event));
    const decodedPointer = decodeBody(pointer!.value, { recordKey: pointer!.key });
    expect(decodedPointer.kind === 'event' && decodedPointer.event.deadletter).toMatchObject({ container: 'c', blob: stored[0]!.name });
    const full = decodeBody(stored[0]!.body, { recordKey: pointer!.key });
    expect(full.kind === 'event' && full.event.key).toEqual({ id: 1 });
    expect(full.kind === 'event' && full.event.after).toEqual({ id: 1, price: '1.50', doc: 'x'.repeat(8000) });
  });

  test('native format: the record key is the key JSON, also when it is a slice of the value', () => {
    const native = new RecordBuilder({ topic: 't', topicTemplate: null, prefix: 'p', maxMessageBytes: 1_000_000 }, null, memoryLogger());
    const keys = [{ id: '1' }, { id: 'é 😀 "}' }, { a: 1, b: null }];
    for (const key of keys) {
      for (const over of [{}, { oldKey: { id: 'old é' } }]) {
        const event = buildEnvelope(input('c', { after: { ...key, doc: 'x' }, key, ...over }));
        const r = records(native.tryBuild(event))[0]!;
        expect(r.key!.equals(Buffer.from(JSON.stringify(key)))).toBe(true);
        expect(r.value!.toString()).toBe(JSON.stringify(event));
      }
    }
  });

  test('the native format is untouched by the columns: they are never serialised', () => {
    const native = new RecordBuilder({ topic: 't', topicTemplate: null, prefix: 'p', maxMessageBytes: 1_000_000 }, null, memoryLogger());
    const r = records(native.tryBuild(buildEnvelope(input('c', { after: { id: '1' } }))))[0]!;
    expect(r.value!.toString()).not.toContain('typmod');
    expect(JSON.stringify(buildEnvelope(input('c')))).not.toContain('typmod');
  });
});

describe('RecordBuilder.rowsLayout and layoutRecord (native format, snapshot chunks)', () => {
  const native = (maxMessageBytes = 1_000_000) =>
    new RecordBuilder({ topic: 'hub', topicTemplate: null, prefix: 'shop', maxMessageBytes }, null, memoryLogger());
  const snap = (over: Partial<EnvelopeInput> = {}): EnvelopeInput =>
    input('r', { snapshot: 'true', txId: null, commitLsn: null, lastCommitLsn: null, columns: undefined, ...over });

  test.each([
    ['plain row', {}, { id: '1', price: 2.5, doc: 'x' }],
    [
      'types, renamed table, hostile text',
      { columnTypes: { price: 'numeric', 'we"ird': 'text' }, renamedTo: 'public.renamed' },
      { id: '9007199254740993', 'we"ird': '"}\u2028\\ \u0000 é 😀', doc: null },
    ],
    ['nested json, empty row', {}, { doc: { a: [1, { b: null }], '': 'k' } }],
  ])('%s: byte-identical to tryBuild of the same event', (_name, over, after) => {
    const b = native();
    const key = { id: (after as Record<string, unknown>).id ?? null };
    const expected = b.tryBuild(buildEnvelope(snap({ ...over, after, key }))) as OutRecord;
    const layout = b.rowsLayout(buildEnvelope(snap({ ...over, after: { ignored: 1 }, key: { ignored: 2 } })))!;
    const got = layoutRecord(layout, JSON.stringify(after), JSON.stringify(key))!;
    expect(got.topic).toBe(expected.topic);
    expect(got.key!.toString()).toBe(expected.key!.toString());
    expect(got.value!.toString()).toBe(expected.value!.toString());
  });

  test('too large: null (the caller takes the claim-check path); the Debezium format has no shortcut', () => {
    const layout = native(2_000).rowsLayout(buildEnvelope(snap()))!;
    expect(layoutRecord(layout, JSON.stringify({ doc: 'x'.repeat(500) }), '{"id":1}')).not.toBeNull();
    expect(layoutRecord(layout, JSON.stringify({ doc: 'x'.repeat(1_000) }), '{"id":1}')).toBeNull();
    expect(builder().rowsLayout(buildEnvelope(snap({ columns })))).toBeNull();
  });
});

describe('RecordBuilder.insertRecords (native format, the stream inserts)', () => {
  const native = (maxMessageBytes = 1_000_000) =>
    new RecordBuilder({ topic: 'hub', topicTemplate: '{prefix}.{schema}.{table}', prefix: 'shop', maxMessageBytes }, null, memoryLogger());
  const ins = (over: Partial<EnvelopeInput> = {}): EnvelopeInput => input('c', { columns: undefined, ...over });
  // The template's transaction, position and clock differ from every written change's: the writer must not keep them.
  const template = (over: Partial<EnvelopeInput> = {}) =>
    buildEnvelope(ins({ ...over, after: { ignored: 1 }, key: { ignored: 2 }, lsn: 1n, commitLsn: 2n, lastCommitLsn: 3n, txId: 4, sourceTsMs: 5.5, nowMs: 3 }));

  test.each([
    ['plain row', {}, { id: '1', price: 2.5, doc: 'x' }, 100n, 1_700_000_000_200],
    [
      'types, renamed table, hostile text, first transaction (no previous commit), fractional commit time',
      { columnTypes: { price: 'numeric', 'we"ird': 'text' }, renamedTo: 'public.re"named', lastCommitLsn: null, sourceTsMs: 1_700_000_000_000.001 },
      { id: '9007199254740993', 'we"ird': '"}\u2028\\ \u0000 é 😀', doc: null },
      2n ** 40n + 17n,
      0,
    ],
    ['nested json, empty key, a schema and table to escape', { schema: 'S"c', table: 't\\1' }, { doc: { a: [1, { b: null }], '': 'k' } }, 5n, 1],
    ['an LSN past 2^53 (printed as a double in lsn, exactly in sequence)', {}, { id: '2' }, 2n ** 53n - 500n, 5],
    ['a commit LSN past 2^53, no commit time', { commitLsn: 2n ** 60n + 3n, sourceTsMs: Number.NaN }, { id: '3' }, 2n ** 60n, 6],
  ])('%s: byte-identical to tryBuild of the same event, for every transaction, LSN and clock', (_name, over, after, lsn, now) => {
    const b = native();
    const key = { id: (after as Record<string, unknown>).id ?? null };
    const writer = b.insertRecords(template(over))!;
    const base = ins(over);
    const tx1 = { xid: base.txId!, commitLsn: base.commitLsn!, commitTimeMs: base.sourceTsMs };
    const tx2 = { xid: base.txId! + 1, commitLsn: base.commitLsn! + 50n, commitTimeMs: base.sourceTsMs + 1.25 };
    // Two changes of one transaction, then one of the next (whose previous commit is the first's).
    for (const [tx, last, l, n] of [
      [tx1, base.lastCommitLsn, lsn, now],
      [tx1, base.lastCommitLsn, lsn + 1_000n, now + 7],
      [tx2, tx1.commitLsn, lsn + 2_000n, now + 7],
    ] as const) {
      const event = buildEnvelope(
        ins({ ...over, after, key, lsn: l, nowMs: n, txId: tx.xid, commitLsn: tx.commitLsn, sourceTsMs: tx.commitTimeMs, lastCommitLsn: last }),
      );
      const expected = b.tryBuild(event) as OutRecord;
      const got = writer.write(tx, last, JSON.stringify(after), JSON.stringify(key), l, n)!;
      expect(got.topic).toBe(expected.topic);
      expect(got.key!.toString()).toBe(expected.key!.toString());
      expect(got.value!.toString()).toBe(expected.value!.toString());
      expect(got.value!.toString()).toBe(JSON.stringify(event));
    }
  });

  test('too large: null (the caller builds the event); none for the Debezium format, an update or a create with old_key or unchanged TOAST', () => {
    const writer = native(2_000).insertRecords(template())!;
    const tx = { xid: 1, commitLsn: 200n, commitTimeMs: 1 };
    expect(writer.write(tx, 90n, JSON.stringify({ doc: 'x'.repeat(500) }), '{"id":1}', 100n, 1)).not.toBeNull();
    expect(writer.write(tx, 90n, JSON.stringify({ doc: 'x'.repeat(1_000) }), '{"id":1}', 100n, 1)).toBeNull();
    expect(builder().insertRecords(buildEnvelope(input('c')))).toBeNull();
    expect(native().insertRecords(buildEnvelope(ins({ op: 'u' })))).toBeNull();
    expect(native().insertRecords(buildEnvelope(ins({ oldKey: { id: 1 } })))).toBeNull();
    expect(native().insertRecords(buildEnvelope(ins({ unchangedToast: ['doc'] })))).toBeNull();
  });
});
