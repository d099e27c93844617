import { describe, expect, it } from '@jest/globals';
import { DefaultAzureCredential, ManagedIdentityCredential } from '@azure/identity';
import { connectionFactory } from '../../../src/shared/adx/clients.js';
import { setupCommands } from '../../../src/shared/adx/commands.js';
import { deriveIngestUrl, describeAdxConfig, loadAdxConfig } from '../../../src/shared/adx/config.js';
import { AdxSinkError, isTransient, toAdxSinkError } from '../../../src/shared/adx/errors.js';
import { ConfigError } from '../../../src/shared/core/errors.js';
import { memoryLogger } from '../../../src/shared/core/logger.js';

const base = { ADX_CLUSTER_URL: 'https://mycluster.westeurope.kusto.windows.net', ADX_DATABASE: 'cdc' };

function configError(env: Record<string, string>): ConfigError {
  try {
    loadAdxConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('loadAdxConfig', () => {
  it('defaults: queued ingestion, managed identity, derived ingest- URL, the demo tables', () => {
    const config = loadAdxConfig(base);
    expect(config).toMatchObject({
      clusterUrl: 'https://mycluster.westeurope.kusto.windows.net',
      ingestUrl: 'https://ingest-mycluster.westeurope.kusto.windows.net',
      database: 'cdc',
      mode: 'queued',
      auth: { kind: 'managed-identity' },
      batching: { MaximumBatchingTimeSpan: '00:00:30', MaximumNumberOfItems: 500, MaximumRawDataSizeMB: 1024 },
      folder: 'cdc',
      truncatesTable: 'CdcTruncates',
    });
    expect(loadAdxConfig({ ...base, ADX_TRUNCATES_TABLE: 'PgTruncates' }).truncatesTable).toBe('PgTruncates');
    expect(config.routes.map((r) => [r.source, r.table, r.mapping, r.historyTable, r.latestView, r.currentFunction])).toEqual([
      ['retail.orders_info', 'Orders', 'OrdersEventMapping', 'OrdersHistory', 'OrdersLatest', 'OrdersCurrent'],
      ['bank.holding', 'Holding', 'HoldingEventMapping', 'HoldingHistory', 'HoldingLatest', 'HoldingCurrent'],
    ]);
  });

  it('declared columns and keys name PostgreSQL columns; the route holds their ADX names (adxColumnName)', () => {
    const [route] = loadAdxConfig({
      ...base,
      CDC_ROUTES: JSON.stringify({ 'a.t': { keys: ['order:id'], adx: { table: 'T', columns: { 'order:id': 'long', __op: 'string', 'line no': 'int' } } } }),
    }).routes;
    expect(route).toMatchObject({
      keys: ['order_x3A_id'],
      columns: [
        { name: 'order_x3A_id', type: 'long' },
        { name: '_x5F__op', type: 'string' },
        { name: 'line no', type: 'int' },
      ],
      sourceColumns: ['order:id', '__op', 'line no'],
    });
  });

  it('keeps local endpoints (emulator, stand-in) as they are', () => {
    expect(deriveIngestUrl('http://localhost:8080')).toBe('http://localhost:8080');
    expect(deriveIngestUrl('http://127.0.0.1:8080')).toBe('http://127.0.0.1:8080');
    expect(loadAdxConfig({ ...base, ADX_INGEST_URL: 'https://ingest-other.kusto.windows.net/' }).ingestUrl).toBe('https://ingest-other.kusto.windows.net');
  });

  it.each([
    [{ ADX_DATABASE: 'cdc' }, 'ADX_CLUSTER_URL'],
    [{ ADX_CLUSTER_URL: 'https://c.kusto.windows.net' }, 'ADX_DATABASE'],
    [{ ...base, ADX_CLUSTER_URL: 'not a url' }, 'ADX_CLUSTER_URL'],
    [{ ...base, ADX_INGESTION_MODE: 'stream' }, 'ADX_INGESTION_MODE'],
    [{ ...base, ADX_AUTH: 'password' }, 'ADX_AUTH'],
    [{ ...base, ADX_AUTH: 'app-key', ADX_TENANT_ID: 't', ADX_CLIENT_SECRET: 's3cr3t' }, 'ADX_CLIENT_ID'],
    [{ ...base, ADX_AUTH: 'app-key', ADX_CLIENT_ID: 'c', ADX_CLIENT_SECRET: 's3cr3t' }, 'ADX_TENANT_ID'],
    [{ ...base, ADX_AUTH: 'app-key', ADX_CLIENT_ID: 'c', ADX_TENANT_ID: 't' }, 'ADX_CLIENT_SECRET'],
    [{ ...base, ADX_CLIENT_SECRET: 's3cr3t' }, 'ADX_CLIENT_SECRET'],
    [{ ...base, ADX_TABLE_ROUTES: '{' }, 'ADX_TABLE_ROUTES'],
    [{ ...base, ADX_TABLE_ROUTES: '[]' }, 'ADX_TABLE_ROUTES'],
    [
      { ...base, ADX_TABLE_ROUTES: '[{"source":"a.b","table":"T","keys":["x"],"columns":{"y":"string"}}]' },
      'ADX_TABLE_ROUTES[0]: keys of a.b: names among its columns, got "x"',
    ],
    [{ ...base, ADX_TABLE_ROUTES: '[{"source":"a.b","table":"T","keys":["x"],"columns":{"x":"varchar"}}]' }, 'ADX_TABLE_ROUTES[0]: type of a.b.x'],
    [{ ...base, ADX_TABLE_ROUTES: '[{"source":"a.b","table":"T;drop","keys":["x"],"columns":{"x":"long"}}]' }, 'ADX_TABLE_ROUTES[0]: table'],
    [
      {
        ...base,
        ADX_TABLE_ROUTES: '[{"source":"a.b","table":"T","keys":["x"],"columns":{"x":"long"}},{"source":"a.c","table":"T","keys":["x"],"columns":{"x":"long"}}]',
      },
      'each ADX name used once, got "T (used by a.b and a.c)"',
    ],
    [
      { ...base, CDC_ROUTES: '{"a.b":{"keys":["x"],"adx":{"table":"T","columns":{"y":"string"}}}}' },
      'CDC_ROUTES: expected CDC_ROUTES["a.b"]: keys of a.b: names among its columns, got "x"',
    ],
    [{ ...base, CDC_ROUTES: '{"a.b":{"adx":{"table":"T","columns":{"x":"long"}}}}' }, 'CDC_ROUTES: expected CDC_ROUTES["a.b"]: keys of a.b: a non-empty array'],
    [{ ...base, CDC_ROUTES: '{"a.b":{"keys":["x"],"adx":{"table":"T","columns":{"x":"varchar"}}}}' }, 'CDC_ROUTES["a.b"]: type of a.b.x'],
    [{ ...base, CDC_ROUTES: '{"a.b":{"keys":["x"],"adx":{"table":"T;drop","columns":{"x":"long"}}}}' }, 'CDC_ROUTES["a.b"]: table of a.b'],
    [
      {
        ...base,
        CDC_ROUTES: '{"a.b":{"keys":["x"],"adx":{"table":"T","columns":{"x":"long"}}},"a.c":{"keys":["x"],"adx":{"table":"TLatest","columns":{"x":"long"}}}}',
      },
      'CDC_ROUTES: expected each ADX name used once, got "TLatest (used by a.b and a.c)"',
    ],
    [{ ...base, CDC_ROUTES: '{"a.b":{"elasticsearch":{"index":"x"}}}' }, 'CDC_ROUTES: expected at least one table with an "adx" section, got "a.b"'],
    [{ ...base, ADX_BATCHING_MAX_ITEMS: 'many' }, 'ADX_BATCHING_MAX_ITEMS'],
    [{ ...base, ADX_BATCHING_TIMESPAN: '30s' }, 'ADX_BATCHING_TIMESPAN'],
    [{ ...base, ADX_TRUNCATES_TABLE: 'Cdc Truncates' }, 'ADX_TRUNCATES_TABLE'],
    [
      { ...base, ADX_TRUNCATES_TABLE: 'orderslatest' },
      'ADX_TRUNCATES_TABLE: expected a name no route uses (the route of retail.orders_info in CDC_ROUTES uses it), got "orderslatest"',
    ],
  ])('fails fast naming the setting (%j)', (env, name) => {
    const error = configError(env);
    expect(error.message).toContain(name);
    expect(error.message).not.toContain('s3cr3t');
    expect(error.canRetry).toBe(false);
  });

  it('accepts an application key and never shows it', () => {
    const config = loadAdxConfig({ ...base, ADX_AUTH: 'app-key', ADX_CLIENT_ID: 'app', ADX_TENANT_ID: 'tenant', ADX_CLIENT_SECRET: 's3cr3t' });
    expect(config.auth).toEqual({ kind: 'app-key', clientId: 'app', tenantId: 'tenant', clientSecret: 's3cr3t' });
    expect(JSON.stringify(describeAdxConfig(config))).not.toContain('s3cr3t');
  });
});

describe('migrating from ADX_TABLE_ROUTES (docs/adx.md)', () => {
  const before = [
    {
      source: 'retail.orders_info',
      table: 'Orders',
      keys: ['orderid'],
      columns: { orderid: 'string', custid: 'string', city: 'string', amount: 'int', purchase_time: 'datetime' },
      mapping: 'OrdersEventMapping',
      historyTable: 'OrdersHistory',
      historyColumns: ['city', 'amount'],
      historyContext: ['custid'],
      latestView: 'OrdersLatest',
      currentFunction: 'OrdersCurrent',
    },
  ];
  const after = {
    'retail.orders_info': {
      keys: ['orderid'],
      history: { columns: ['city', 'amount'], context: ['custid'] },
      elasticsearch: { index: 'cdc-retail.orders_info' },
      adx: {
        table: 'Orders',
        columns: { orderid: 'string', custid: 'string', city: 'string', amount: 'int', purchase_time: 'datetime' },
        mapping: 'OrdersEventMapping',
        historyTable: 'OrdersHistory',
        latestView: 'OrdersLatest',
        currentFunction: 'OrdersCurrent',
      },
    },
  };

  it('the CDC_ROUTES adx section gives the same ADX routes (and so the same setup commands) as the old route, without the warning', () => {
    const oldLogger = memoryLogger();
    const newLogger = memoryLogger();
    const old = loadAdxConfig({ ...base, ADX_TABLE_ROUTES: JSON.stringify(before) }, oldLogger);
    const now = loadAdxConfig({ ...base, CDC_ROUTES: JSON.stringify(after) }, newLogger);
    expect(now.routes).toEqual(old.routes);
    expect(setupCommands(now)).toEqual(setupCommands(old));
    expect(now.routes[0]).toMatchObject({ table: 'Orders', keys: ['orderid'], history: { columns: ['city', 'amount'], context: ['custid'] } });
    expect(oldLogger.lines.map((l) => [l.level, l.setting, l.replacement])).toEqual([['warn', 'ADX_TABLE_ROUTES', 'CDC_ROUTES']]);
    expect(newLogger.lines).toEqual([]);
  });

  it('errors in the old variable still name it and the route index', () => {
    const error = configError({ ...base, ADX_TABLE_ROUTES: JSON.stringify([{ ...before[0], keys: ['nope'] }]) });
    expect(error.message).toBe('ADX_TABLE_ROUTES: expected ADX_TABLE_ROUTES[0]: keys of retail.orders_info: names among its columns, got "nope"');
  });
});

describe('authentication (connection builders)', () => {
  const build = (env: Record<string, string>) => {
    const config = loadAdxConfig({ ...base, ...env });
    return connectionFactory(config)(config.clusterUrl);
  };

  it('managed identity (system- or user-assigned) and DefaultAzureCredential use a token credential', () => {
    expect(build({}).tokenCredential).toBeInstanceOf(ManagedIdentityCredential);
    expect(build({ ADX_CLIENT_ID: '11111111-2222-3333-4444-555555555555' }).tokenCredential).toBeInstanceOf(ManagedIdentityCredential);
    expect(build({ ADX_AUTH: 'default' }).tokenCredential).toBeInstanceOf(DefaultAzureCredential);
  });

  it('app-key uses the application id, key and tenant; none sends no credentials', () => {
    const kcsb = build({ ADX_AUTH: 'app-key', ADX_CLIENT_ID: 'app', ADX_TENANT_ID: 'tenant', ADX_CLIENT_SECRET: 's3cr3t' });
    expect([kcsb.applicationClientId, kcsb.applicationKey, kcsb.authorityId]).toEqual(['app', 's3cr3t', 'tenant']);
    const none = build({ ADX_AUTH: 'none' });
    expect([none.tokenCredential, none.applicationKey, none.useManagedIdentityAuth]).toEqual([undefined, undefined, undefined]);
    expect(none.initialCatalog).toBe('cdc');
  });
});

describe('error classification', () => {
  const axiosLike = (status: number, message = 'x', permanent?: boolean) =>
    Object.assign(new Error(`Request failed with status code ${status}`), {
      response: { status, data: { error: { '@message': message, ...(permanent === undefined ? {} : { '@permanent': permanent }) } } },
    });

  it.each([
    [axiosLike(429), true],
    [axiosLike(500), true],
    [axiosLike(503), true],
    [axiosLike(401), true],
    [axiosLike(400), false],
    [axiosLike(404), false],
    [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), true],
    [Object.assign(new Error('streaming rejected'), { '@permanent': true }), false],
    [Object.assign(new Error('throttled'), { name: 'ThrottlingError' }), true],
    [new Error('Failed to upload to blob.'), true],
  ])('%s → transient %s', (error, transient) => {
    expect(isTransient(error)).toBe(transient);
  });

  it('names the table and keeps the service message, not the request', () => {
    const error = toAdxSinkError(axiosLike(400, "Mapping 'OrdersEventMapping' not found", true), 'ADX queued ingestion of 3 rows', {
      table: 'Orders',
      sourceTable: 'retail.orders_info',
    });
    expect(error).toBeInstanceOf(AdxSinkError);
    expect(error).toMatchObject({ canRetry: false, code: 'REJECTED_BY_SINK', table: 'Orders', sourceTable: 'retail.orders_info', status: 400 });
    expect(error.message).toBe("ADX queued ingestion of 3 rows (table Orders) failed (rejected): HTTP 400: Mapping 'OrdersEventMapping' not found");
  });
});
