/**
 * Sinks behind an existing Debezium: the recorded Debezium 3.6.1 output (test/fixtures/debezium, every
 * variant) goes through the Elasticsearch, change-history and ADX sinks, and what they write is
 * compared with what they write from the reader's native events for the same workload (replayed here
 * against the real PostgreSQL and Kafka). Elasticsearch is the real test cluster; ADX is replaced at
 * its ingestion boundary (the JSON lines the sink hands the ingest client, by table).
 *
 * With the Connect schema (`*.schemas` variants) the results must be identical, except for what
 * differs by nature or cannot be in Debezium's event (EXCLUDED below, each with its reason). Without
 * the schema, the columns whose JSON does not tell their type keep Debezium's encoding (asserted to be
 * exactly the recorded value) and everything else must be identical.
 */
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { Client } from '@elastic/elasticsearch';
import { AdxSink } from '../../../src/shared/adx/adxSink.js';
import type { ControlClient, IngestRequest, Ingestor } from '../../../src/shared/adx/clients.js';
import { adxRoutes } from '../../../src/shared/adx/config.js';
import { processBatch } from '../../../src/shared/batch/processBatch.js';
import type { BatchInfo, EventRecord, Sink } from '../../../src/shared/batch/types.js';
import { PermanentRecordError } from '../../../src/shared/core/errors.js';
import { MemoryDeadLetterStore } from '../../../src/shared/deadletter/memoryDeadLetterStore.js';
import { decodeBody } from '../../../src/shared/events/decode.js';
import { DEBEZIUM_INPUT_DEFAULTS, UNAVAILABLE_VALUE, type DebeziumInputOptions } from '../../../src/shared/events/fromDebezium.js';
import { ElasticsearchHistorySink } from '../../../src/shared/history/historySink.js';
import { Router, type RoutesConfig } from '../../../src/shared/routing/routes.js';
import { decodeDate, decodeTime, decodeTimestamp } from '../../../src/shared/events/pgTypes.js';
import { pgClient } from '../../reader/helpers.js';
import { cleanup, testClient, testSink, uniqueIndex } from '../esTestKit.js';
import { debeziumMeta, nativeWorkload, recordedVariant, type NativeRecord, type RecordedRecord } from './debeziumWorkload.js';

const TABLE = `${debeziumMeta.schema}.all_types`;

/**
 * Left out of every comparison, because they differ by nature (another server, another run):
 * the WAL positions and what is derived from them (`__lsn`, `Lsn`, the ES `_version`, history ids),
 * commit and event times, transaction ids, the producer's version; `__commit_lsn` (Debezium has no
 * commit LSN, the reader adds it) and `__old_key` (the reader's extension on a key change's create).
 */
const BY_NATURE = [
  '__lsn',
  '__commit_lsn',
  '__commit_time',
  '__source_ts_ms',
  '__ts_ms',
  '__txid',
  '__txId',
  '__version',
  '__old_key',
  'Lsn',
  'CommitLsn',
  'CommitTime',
  'TxId',
  'EventTime',
  'IngestedAt',
];

/**
 * Columns Debezium's event cannot carry as the reader does (with the schema), each a documented
 * difference (docs/sinks.md "Debezium's events"):
 * - `nm`: Debezium 3.6.1 streams `name` columns as null (its snapshot reads them);
 * - `m` (money): Debezium sends the amount, not PostgreSQL's lc_monetary text (`12.34`, not `$12.34`);
 * - `tmtz` (timetz): Debezium normalises the time to UTC, the offset is lost (`08:11:12.5+00` for `10:11:12.5+02`);
 * - `iv` (interval) under `interval.handling.mode=numeric`: an approximate count of microseconds (a
 *   month is 30.4375 days), not the interval's fields;
 * - `ip` (inet): a plain string in Debezium's schema, so no `inet` in `source.types`.
 * Values only: on rows 4 and 5 (the edge values) also `n` (numeric NaN: Debezium's precise mode sends
 * null) and `ia` (a two-dimensional array: Debezium sends null elements).
 */
const NOT_IN_DEBEZIUM = ['nm', 'm', 'tmtz', 'ip'];
/**
 * `__snapshot` of snapshot rows: Debezium marks the first row `first` (and the last `last`), the
 * reader's native events only the last; a marker, not row data.
 */
const SNAPSHOT_MARKER = ['__snapshot'];
const NUMERIC_INTERVAL = ['iv'];
/**
 * Under `decimal.handling.mode=string` the schema types numeric and money columns as plain strings
 * (no `Decimal` name), so `source.types` cannot name them: their values are the same text, but the
 * Elasticsearch mapping and ADX column type are the dynamic ones (declare them in CDC_ROUTES).
 */
const STRING_DECIMALS = ['n', 'n52', 'huge'];
/**
 * ADX's `__from_key`, the old key on the insert of a primary-key change: Debezium's events carry no
 * old key (no `old_key`; its `__debezium.oldkey` header's wire format was not confirmed), so it is
 * null for them (README "Migrating from Debezium").
 */
const NO_OLD_KEY = ['__from_key'];
const EDGE_ROWS_ONLY = ['n', 'ia'];
/** Under `time.precision.mode=isostring`, row 4's `tm` (24:00:00): java.time prints it as `00:00:00Z`. */
const ISOSTRING_EDGE = ['tm'];

const isRawJSON = (v: unknown): boolean => (JSON as unknown as { isRawJSON: (v: unknown) => boolean }).isRawJSON(v);

/** Without the schema: columns whose JSON does not tell their type, kept as Debezium encoded them. */
const TYPED_BY_SCHEMA = ['i8', 'n', 'n52', 'huge', 'm', 'j', 'jb', 'd', 'tm', 'tm3', 'tmtz', 'ts', 'ts3', 'tstz', 'iv', 'ia'];

/**
 * Without the schema nothing tells Elasticsearch that `f4`/`f8` are floats that may be `NaN`: the
 * dynamic mapping of the first value (1.5) refuses the NaN later. Declaring the fields in the route is
 * the documented remedy (docs/sinks.md), given to both runs alike.
 */
const FLOAT_PROPERTIES = { f4: { type: 'double', ignore_malformed: true }, f8: { type: 'double', ignore_malformed: true } };

const routes = (index: string, declareFloats = false): RoutesConfig => ({
  [TABLE]: {
    keys: ['id'],
    elasticsearch: { index, ...(declareFloats ? { properties: FLOAT_PROPERTIES } : {}) },
    adx: { table: 'AllTypes', columns: { id: 'long', ...(declareFloats ? { f4: 'real' as const, f8: 'real' as const } : {}) } },
  },
});

const batch: BatchInfo = { functionName: 'dbz', partitionId: '0', firstOffset: '0', lastOffset: '0' };

const toRecords = (bodies: { body: Buffer; key?: Buffer }[]): EventRecord[] =>
  bodies.map(({ body, key }, i) => ({ body, ...(key ? { key } : {}), partitionId: '0', offset: String(i), sequenceNumber: String(i) }));

const nativeRecords = (native: NativeRecord[], dropTruncates: boolean): EventRecord[] =>
  toRecords(native.filter((r) => !(dropTruncates && r.value.includes('"op":"t"'))).map((r) => ({ body: Buffer.from(r.value) })));

/** Debezium's records as the host hands them over: with the record key (the worker) or without (the Functions trigger). */
const debeziumRecords = (recorded: RecordedRecord[], withKey: boolean): EventRecord[] =>
  toRecords(
    recorded.map((r) => ({
      body: r.value === null ? Buffer.alloc(0) : Buffer.from(JSON.stringify(r.value)),
      ...(withKey && r.key !== null ? { key: Buffer.from(JSON.stringify(r.key)) } : {}),
    })),
  );

async function run<T>(sink: Sink<T>, records: EventRecord[], debezium?: DebeziumInputOptions) {
  const deadLetters = new MemoryDeadLetterStore();
  const report = await processBatch(records, { sink, deadLetters, batch, ...(debezium ? { debezium } : {}) });
  const reasons = report.outcomes.flatMap((o) => (o.status === 'deadLetter' ? [o.reason] : []));
  return { report, reasons };
}

type Doc = Record<string, unknown>;

/**
 * The document without the excluded fields; a column's `__raw_` copy (ADX: the text of a value its
 * type cannot hold) and `__json` copy (Elasticsearch: a json column's text) go with it.
 */
function blank(doc: Doc, fields: readonly string[]): Doc {
  const out: Doc = {};
  for (const [k, v] of Object.entries(doc)) if (!fields.includes(k) && !fields.some((f) => k === `__raw_${f}`)) out[k] = v;
  if (typeof out.__json === 'object' && out.__json !== null) {
    out.__json = blank(out.__json as Doc, fields);
    if (Object.keys(out.__json as Doc).length === 0) delete out.__json;
  }
  return out;
}

async function esDocs(client: Client, index: string): Promise<Map<string, Doc>> {
  await client.indices.refresh({ index });
  const res = await client.search<Doc>({ index, size: 100, query: { match_all: {} } });
  return new Map(res.hits.hits.map((h) => [h._id ?? '', h._source ?? {}]));
}

async function historyRows(client: Client, index: string): Promise<Doc[]> {
  await client.indices.refresh({ index });
  const res = await client.search<Doc>({ index, size: 1000, query: { match_all: {} } });
  return res.hits.hits.map((h) => h._source ?? {});
}

/** ADX stood in at the ingestion boundary: the JSON lines per table. */
function adxSink(declareFloats: boolean): { sink: AdxSink; lines: Map<string, Doc[]> } {
  const lines = new Map<string, Doc[]>();
  const ingestor: Ingestor = {
    mode: 'queued',
    ingest: (request: IngestRequest) => {
      const rows = request.data
        .toString('utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => JSON.parse(l) as Doc);
      lines.set(request.table, [...(lines.get(request.table) ?? []), ...rows]);
      return Promise.resolve();
    },
    close: () => undefined,
  };
  const control: ControlClient = { execute: () => Promise.resolve([]), close: () => undefined };
  return { sink: new AdxSink({ config: { routes: adxRoutes(new Router(routes('unused', declareFloats))) }, ingestor, control }), lines };
}

/** The history rows as a comparable, order-free list. */
const historyKey = (row: Doc): string => JSON.stringify([row.KeyText, row.Column, row.Op, row.NewValue, row.OldValue]);

let native: NativeRecord[] = [];
const client = testClient();
const indices: string[] = [];

beforeAll(async () => {
  native = await nativeWorkload();
}, 120_000);

afterAll(async () => {
  await cleanup(client, indices);
  for (const index of indices) await client.indices.deleteIndexTemplate({ name: `cdc-history-${index}` }).catch(() => undefined);
  await client.close();
});

describe('decoding Debezium events: the key', () => {
  const recorded = recordedVariant('defaults.schemas');
  const update = recorded.find((r) => (r.value as { payload?: { op?: string } } | null)?.payload?.op === 'u')!;
  const body = Buffer.from(JSON.stringify(update.value));

  test('from the record key (the worker), with or without its schema wrapper', () => {
    for (const key of [JSON.stringify(update.key), JSON.stringify((update.key as { payload: unknown }).payload)]) {
      const decoded = decodeBody(body, { recordKey: Buffer.from(key) });
      expect(decoded.kind === 'event' && decoded.event.key).toEqual({ id: 1 });
    }
  });

  test('from CDC_ROUTES keys when the host gives no record key (the Functions trigger); neither: NO_KEY naming the setting', () => {
    const decoded = decodeBody(body, { debezium: { ...DEBEZIUM_INPUT_DEFAULTS, keyColumns: () => ['id'] } });
    expect(decoded.kind === 'event' && decoded.event.key).toEqual({ id: 1 });
    expect(() => decodeBody(body)).toThrow(PermanentRecordError);
    expect(() => decodeBody(body)).toThrow(`set CDC_ROUTES["${TABLE}"].keys`);
    expect(() => decodeBody(body, { debezium: { ...DEBEZIUM_INPUT_DEFAULTS, keyColumns: () => ['nope'] } })).toThrow('lacks the key column(s) nope');
  });

  test('the unavailable-value placeholder becomes unchanged TOAST; a configured placeholder is the one recognised', () => {
    const decoded = decodeBody(body, { recordKey: JSON.stringify(update.key) });
    expect(decoded.kind === 'event' && decoded.event.source.unchanged_toast).toEqual(['big']);
    expect(decoded.kind === 'event' && 'big' in (decoded.event.after ?? {})).toBe(false);
    const other = decodeBody(body, { recordKey: JSON.stringify(update.key), debezium: { unavailableValuePlaceholder: '<other>' } });
    expect(other.kind === 'event' && other.event.after?.big).toBe(DEBEZIUM_INPUT_DEFAULTS.unavailableValuePlaceholder);
  });
});

describe("decoding Debezium events: values beyond the fixtures' workload, checked against PostgreSQL's own text", () => {
  /** A Debezium event with the schema, one column per Connect type, for one row. */
  const event = (fields: { field: string; type: string; name: string }[], after: Record<string, unknown>) =>
    JSON.stringify({
      schema: { type: 'struct', fields: [{ type: 'struct', field: 'after', fields: [{ type: 'int32', field: 'id' }, ...fields] }] },
      payload: {
        before: null,
        after: { id: 1, ...after },
        source: { version: '3.6.1.Final', connector: 'postgresql', name: 'x', ts_ms: 1, snapshot: 'false', db: 'd', schema: 's', table: 't', txId: 1, lsn: 1 },
        op: 'c',
        ts_ms: 1,
      },
    });
  const decodeAfter = (text: string) => {
    const decoded = decodeBody(Buffer.from(text), { recordKey: '{"id":1}' });
    if (decoded.kind !== 'event') throw new Error('not an event');
    return decoded.event.after ?? {};
  };

  test('day counts, epoch milli/micro/nanoseconds and times of day (BC, before 1970, far future, fractions) give what the reader gives for the same value', async () => {
    const c = await pgClient();
    try {
      // PostgreSQL computes each value's text from the same count (days and microseconds apart: an
      // interval times a large factor is computed in float8); the reader's decoders turn that text into its JSON
      const days = [-2440588, -719529, -719528, -719163, -1, 0, 1, 2932896, 100_000_000];
      const micros = ['-62135596800000001', '-62167219200000000', '-1', '-999', '0', '1', '1714558272123456', '253402300799999999', '9000000000000000000'];
      const timesMicros = ['0', '1', '999999', '36672123456', '86399999999', '86400000000'];
      const { rows } = await c.query<{ d: string[]; ts: string[]; tm: string[] }>(
        `SELECT (SELECT array_agg(('1970-01-01'::date + n)::text ORDER BY i) FROM unnest($1::int[]) WITH ORDINALITY AS u(n, i)) AS d,
                (SELECT array_agg(('1970-01-01 00:00:00'::timestamp + (n / 86400000000) * interval '1 day' + (n % 86400000000) * interval '1 microsecond')::text ORDER BY i)
                   FROM unnest($2::bigint[]) WITH ORDINALITY AS u(n, i)) AS ts,
                (SELECT array_agg(CASE WHEN n = 86400000000 THEN '24:00:00' ELSE ('00:00:00'::time + n * interval '1 microsecond')::text END ORDER BY i)
                   FROM unnest($3::bigint[]) WITH ORDINALITY AS u(n, i)) AS tm`,
        [days, micros, timesMicros],
      );
      const pgText = rows[0]!;
      for (const [i, n] of days.entries()) {
        const after = decodeAfter(event([{ field: 'd', type: 'int32', name: 'io.debezium.time.Date' }], { d: n }));
        expect({ n, d: after.d }).toEqual({ n, d: decodeDate(pgText.d[i]!) });
      }
      for (const [i, n] of micros.entries()) {
        const want = decodeTimestamp(pgText.ts[i]!);
        const fields = [
          { field: 'us', type: 'int64', name: 'io.debezium.time.MicroTimestamp' },
          { field: 'ns', type: 'int64', name: 'io.debezium.time.NanoTimestamp' },
        ];
        // nanoseconds in an int64 reach ±292 years around 1970 only
        const nanosFit = BigInt(n) * 1000n < 1n << 63n && BigInt(n) * 1000n >= -(1n << 63n);
        const text = event(fields, {}).replace('"after":{"id":1}', `"after":{"id":1,"us":${n}${nanosFit ? `,"ns":${BigInt(n) * 1000n}` : ''}}`);
        const after = decodeAfter(text);
        expect({ n, us: after.us, ns: after.ns }).toEqual({ n, us: want, ns: nanosFit ? want : undefined });
        if (BigInt(n) % 1000n === 0n) {
          const ms = decodeAfter(
            event([{ field: 'ms', type: 'int64', name: 'io.debezium.time.Timestamp' }], {}).replace(
              '"after":{"id":1}',
              `"after":{"id":1,"ms":${BigInt(n) / 1000n}}`,
            ),
          );
          expect({ n, ms: ms.ms }).toEqual({ n, ms: want });
        }
      }
      for (const [i, n] of timesMicros.entries()) {
        const fields = [
          { field: 'us', type: 'int64', name: 'io.debezium.time.MicroTime' },
          { field: 'ns', type: 'int64', name: 'io.debezium.time.NanoTime' },
        ];
        const after = decodeAfter(event(fields, { us: Number(n), ns: Number(n) * 1000 }));
        expect({ n, us: after.us, ns: after.ns }).toEqual({ n, us: decodeTime(pgText.tm[i]!), ns: decodeTime(pgText.tm[i]!) });
      }
    } finally {
      await c.end();
    }
  });

  test("decimals: negative, zero, scale 0, long unscaled values (two's complement of any length) give PostgreSQL's numeric text", () => {
    const cases: [string, number][] = [
      ['-1.50', 2],
      ['0.00', 2],
      ['-128', 0],
      ['127', 0],
      ['-0.0000000001', 10],
      ['-99999999999999999999999999999999999999.99', 2],
    ];
    for (const [text, scale] of cases) {
      const unscaled = BigInt(text.replace('.', ''));
      // Java BigInteger.toByteArray: minimal two's complement
      let bytes = 1;
      while (unscaled >= 1n << BigInt(bytes * 8 - 1) || unscaled < -(1n << BigInt(bytes * 8 - 1))) bytes++;
      const hex = ((1n << BigInt(bytes * 8)) + unscaled)
        .toString(16)
        .slice(-bytes * 2)
        .padStart(bytes * 2, '0');
      const b64 = Buffer.from(hex, 'hex').toString('base64');
      const fields = [
        { field: 'fixed', type: 'bytes', name: 'org.apache.kafka.connect.data.Decimal', parameters: { scale: String(scale) } },
        { field: 'variable', type: 'struct', name: 'io.debezium.data.VariableScaleDecimal' },
      ];
      const after = decodeAfter(event(fields, { fixed: b64, variable: { scale, value: b64 } }));
      expect({ text, fixed: after.fixed, variable: after.variable }).toEqual({ text, fixed: text, variable: text });
    }
  });

  test('the placeholder in a bytea column (its bytes, base64) is unchanged TOAST too; an unknown schema name leaves the value as it is', () => {
    const placeholderBytes = Buffer.from(DEBEZIUM_INPUT_DEFAULTS.unavailableValuePlaceholder).toString('base64');
    const fields = [
      { field: 'by', type: 'bytes', name: undefined as unknown as string },
      { field: 'geo', type: 'struct', name: 'io.debezium.data.geometry.Point' },
    ];
    const decoded = decodeBody(Buffer.from(event(fields, { by: placeholderBytes, geo: { x: 1, y: 2 } })), { recordKey: '{"id":1}' });
    expect(decoded.kind === 'event' && decoded.event.source.unchanged_toast).toEqual(['by']);
    expect(decoded.kind === 'event' && decoded.event.after).toEqual({ id: 1, geo: { x: 1, y: 2 } });
  });
});

describe.each(debeziumMeta.variants.map((v) => [v.name, v] as const))('sinks from Debezium %s', (_name, variant) => {
  const recorded = recordedVariant(variant.name);
  const dropTruncates = !recorded.some((r) => JSON.stringify(r.value ?? '').includes('"op":"t"'));
  const numericInterval = variant.settings['interval.handling.mode'] !== 'string';
  // Functions trigger (no record key, keys from CDC_ROUTES) for the schema variants, the worker (record key) for the others.
  const withKey = !variant.schemasEnable;
  const excluded = [...BY_NATURE, ...NOT_IN_DEBEZIUM, ...SNAPSHOT_MARKER, ...(numericInterval ? NUMERIC_INTERVAL : [])];
  const declareFloats = !variant.schemasEnable;
  const isostring = variant.settings['time.precision.mode'] === 'isostring';
  const stringDecimals = variant.settings['decimal.handling.mode'] === 'string';
  const debezium = (index: string): DebeziumInputOptions => ({ ...DEBEZIUM_INPUT_DEFAULTS, keyColumns: (s, t) => new Router(routes(index)).route(s, t).keys });
  /** Schemaless variants: the recorded row images (`after`, or a delete's `before`), in topic order, tombstones left out. */
  const images: Doc[] = recorded.flatMap((r) => {
    const v = r.value as { op?: string; after?: Doc | null; before?: Doc | null } | null;
    return v === null || v.op === 't' ? [] : [v.after ?? v.before ?? {}];
  });
  /** The recorded `after` of the last write of a row (Elasticsearch keeps it, a delete only marks it). */
  const lastImage = (id: string): Doc | undefined =>
    recorded
      .map((r) => (r.value as Doc | null)?.after as Doc | null | undefined)
      .filter((after): after is Doc => typeof after === 'object' && after !== null && String(after.id) === id)
      .at(-1);

  /** `dbz`: the recorded image the row came from, whose values a schemaless event keeps as they are. */
  const compareRow = (id: string, got: Doc, want: Doc, dbz: Doc | undefined) => {
    const edge = id === '4' || id === '5';
    let fields = [...excluded, ...(edge ? [...EDGE_ROWS_ONLY, ...(isostring ? ISOSTRING_EDGE : [])] : [])];
    if (!variant.schemasEnable) {
      fields = [...fields, ...TYPED_BY_SCHEMA];
      // as a JavaScript reader sees them (Elasticsearch's `_source` through its client's JSON.parse)
      const asWritten = (v: unknown) => JSON.stringify(JSON.parse(JSON.stringify(v) ?? 'null'));
      // an integer beyond 2^53 is kept as its decimal text, as the native int8
      const kept = (v: unknown) => (isRawJSON(v) && /^-?\d+$/.test(JSON.stringify(v)) ? JSON.stringify(v) : v);
      for (const column of TYPED_BY_SCHEMA) {
        if (dbz && column in got && dbz[column] !== UNAVAILABLE_VALUE)
          expect({ id, column, value: asWritten(got[column]) }).toEqual({ id, column, value: asWritten(kept(dbz[column])) });
      }
    }
    expect({ id, ...blank(got, fields) }).toEqual({ id, ...blank(want, fields) });
  };

  test('Elasticsearch: the same documents', async () => {
    const nativeIndex = uniqueIndex('dbz-es-native');
    const dbzIndex = uniqueIndex(`dbz-es-${variant.name.replace('.', '-')}`);
    indices.push(nativeIndex, dbzIndex, `${nativeIndex}-control`, `${dbzIndex}-control`);
    const nativeRun = await run(
      testSink(client, routes(nativeIndex, declareFloats), { controlIndex: `${nativeIndex}-control` }),
      nativeRecords(native, dropTruncates),
    );
    const dbzRun = await run(
      testSink(client, routes(dbzIndex, declareFloats), { controlIndex: `${dbzIndex}-control` }),
      debeziumRecords(recorded, withKey),
      debezium(dbzIndex),
    );
    expect(nativeRun.reasons).toEqual([]);
    expect(dbzRun.reasons).toEqual([]);
    expect([nativeRun.report.retried, dbzRun.report.retried]).toEqual([0, 0]);
    const want = await esDocs(client, nativeIndex);
    const got = await esDocs(client, dbzIndex);
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    for (const [id, doc] of want) compareRow(id, got.get(id)!, doc, lastImage(id));
    const mapping = async (index: string) => (await client.indices.getMapping({ index }))[index]!.mappings.properties ?? {};
    const mappingExcluded = [...excluded, ...(stringDecimals ? STRING_DECIMALS : [])];
    if (variant.schemasEnable) expect(blank(await mapping(dbzIndex), mappingExcluded)).toEqual(blank(await mapping(nativeIndex), mappingExcluded));
  });

  test('change history: the same rows', async () => {
    const nativeIndex = uniqueIndex('dbz-hist-native');
    const dbzIndex = uniqueIndex('dbz-hist');
    indices.push(nativeIndex, dbzIndex);
    const sink = (index: string) =>
      new ElasticsearchHistorySink({ client, router: new Router(routes(`${index}-table`)), index, replicas: 0, bulk: { maxAttempts: 2, backoffMs: 10 } });
    const nativeRun = await run(sink(nativeIndex), nativeRecords(native, dropTruncates));
    const dbzRun = await run(sink(dbzIndex), debeziumRecords(recorded, withKey), debezium(`${dbzIndex}-table`));
    expect(nativeRun.reasons).toEqual([]);
    expect(dbzRun.reasons).toEqual([]);
    expect([nativeRun.report.retried, dbzRun.report.retried]).toEqual([0, 0]);
    const columnsExcluded = new Set([...excluded, ...(variant.schemasEnable ? [] : TYPED_BY_SCHEMA)]);
    const comparable = (rows: Doc[]) =>
      rows
        .filter(
          (r) =>
            !columnsExcluded.has(String(r.Column)) &&
            !([...EDGE_ROWS_ONLY, ...(isostring ? ISOSTRING_EDGE : [])].includes(String(r.Column)) && ['4', '5'].includes(String(r.KeyText))),
        )
        .map((r) => blank(r, BY_NATURE))
        .sort((a, b) => historyKey(a).localeCompare(historyKey(b)));
    const want = comparable(await historyRows(client, nativeIndex));
    expect(want.length).toBeGreaterThan(0);
    expect(comparable(await historyRows(client, dbzIndex))).toEqual(want);
  });

  test('ADX: the same rows ingested', async () => {
    const nativeAdx = adxSink(declareFloats);
    const dbzAdx = adxSink(declareFloats);
    const nativeRun = await run(nativeAdx.sink, nativeRecords(native, dropTruncates));
    const dbzRun = await run(dbzAdx.sink, debeziumRecords(recorded, withKey), debezium('unused'));
    expect(nativeRun.reasons).toEqual([]);
    expect(dbzRun.reasons).toEqual([]);
    expect([nativeRun.report.retried, dbzRun.report.retried]).toEqual([0, 0]);
    expect([...dbzAdx.lines.keys()].sort()).toEqual([...nativeAdx.lines.keys()].sort());
    const adxExcluded = [...NO_OLD_KEY, ...(stringDecimals ? STRING_DECIMALS : [])];
    const historyExcluded = new Set([...excluded, ...(variant.schemasEnable ? [] : TYPED_BY_SCHEMA)]);
    const edgeColumns = [...EDGE_ROWS_ONLY, ...(isostring ? ISOSTRING_EDGE : [])];
    for (const [table, rows] of nativeAdx.lines) {
      const got = dbzAdx.lines.get(table) ?? [];
      expect({ table, rows: got.length }).toEqual({ table, rows: rows.length });
      rows.forEach((row, i) => {
        if (table === 'AllTypes') {
          compareRow(String(row.id), blank(got[i]!, adxExcluded), blank(row, adxExcluded), images[i]);
          return;
        }
        // the history table: one row per changed column
        const column = String(row.Column);
        const key = String((row.Key as Doc | undefined)?.id);
        if (historyExcluded.has(column) || (edgeColumns.includes(column) && ['4', '5'].includes(key))) return;
        expect({ table, i, ...blank(got[i]!, BY_NATURE) }).toEqual({ table, i, ...blank(row, BY_NATURE) });
      });
    }
  });
});
