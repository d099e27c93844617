import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../src/shared/core/errors.js';
import { memoryLogger } from '../../src/shared/core/logger.js';
import { declaredColumns, DEFAULT_ROUTES, Router, routerFromEnv } from '../../src/shared/routing/routes.js';

describe('Router (the table catalogue)', () => {
  it('routes configured tables and rejects unknown ones permanently', () => {
    const router = new Router(DEFAULT_ROUTES);
    expect(router.route('retail', 'orders_info').elasticsearch?.index).toBe('cdc-retail.orders_info');
    expect(() => router.route('public', 'nope')).toThrow(expect.objectContaining({ code: 'UNKNOWN_TABLE', canRetry: false }));
  });

  it('fills the wildcard route with the table name', () => {
    const router = new Router({ '*': { elasticsearch: { index: 'cdc-{schema}.{table}' } } });
    expect(router.route('Public', 'Items')).toEqual({ elasticsearch: { index: 'cdc-public.items' } });
  });

  it('fails fast on a bad index name, an adx section on "*" and a catalogue that is not an object', () => {
    expect(() => new Router({ 'a.b': { elasticsearch: { index: 'Upper' } } })).toThrow(ConfigError);
    expect(() => new Router({ '*': { adx: { table: 'T', columns: { a: 'string' } } } })).toThrow(/CDC_ROUTES: expected no adx section in CDC_ROUTES\["\*"\]/);
    expect(() => routerFromEnv({ CDC_ROUTES: '[1]' })).toThrow(/CDC_ROUTES: expected a JSON object/);
  });

  it('describes each demo table once for every sink: keys, history, Elasticsearch and ADX sections', () => {
    const router = new Router(DEFAULT_ROUTES);
    expect(router.tables().map(([table, route]) => [table, route.keys, route.elasticsearch?.index, route.adx?.table, route.history])).toEqual([
      ['retail.orders_info', ['orderid'], 'cdc-retail.orders_info', 'Orders', undefined],
      ['bank.holding', ['holding_id'], 'cdc-bank.holding', 'Holding', { columns: ['holding_stock', 'holding_quantity'], context: ['user_id'] }],
    ]);
    expect(declaredColumns(DEFAULT_ROUTES['retail.orders_info']!)).toEqual(['orderid', 'custid', 'city', 'amount', 'purchase_time']);
    expect(declaredColumns({ elasticsearch: { index: 'x' } })).toEqual([]);
    expect(router.placeOf('bank.holding')).toBe('CDC_ROUTES["bank.holding"]');
  });
});

describe('routerFromEnv with the deprecated ADX_TABLE_ROUTES', () => {
  const legacy = JSON.stringify([
    {
      source: 'bank.holding',
      table: 'Positions',
      keys: ['holding_id'],
      columns: { holding_id: 'long', holding_stock: 'string' },
      historyColumns: ['holding_stock'],
    },
    { source: 'sales.line', table: 'Lines', keys: ['id'], columns: { id: 'long' }, historyTable: null },
  ]);

  it('merges its routes into the catalogue as adx sections (replacing the others), with keys and history, and warns once naming the replacement', () => {
    const logger = memoryLogger();
    const router = routerFromEnv({ ADX_TABLE_ROUTES: legacy }, logger);
    expect(logger.lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        setting: 'ADX_TABLE_ROUTES',
        replacement: 'CDC_ROUTES',
        msg: expect.stringMatching(/deprecated.*CDC_ROUTES.*"adx" section/),
      }),
    ]);
    // ADX_TABLE_ROUTES still lists every ADX table: Orders is not one any more.
    expect(router.tables().map(([table, route]) => [table, route.adx?.table])).toEqual([
      ['retail.orders_info', undefined],
      ['bank.holding', 'Positions'],
      ['sales.line', 'Lines'],
    ]);
    const holding = router.route('bank', 'holding');
    expect(holding).toMatchObject({
      keys: ['holding_id'],
      // One history section: the route's columns replace the default's, its context (not given) is kept.
      history: { columns: ['holding_stock'], context: ['user_id'] },
      elasticsearch: DEFAULT_ROUTES['bank.holding']!.elasticsearch,
      adx: { table: 'Positions', columns: { holding_id: 'long', holding_stock: 'string' } },
    });
    expect(router.route('sales', 'line').adx).toEqual({ table: 'Lines', columns: { id: 'long' }, historyTable: null });
    expect([router.placeOf('bank.holding'), router.placeOf('sales.line'), router.placeOf('retail.orders_info')]).toEqual([
      'ADX_TABLE_ROUTES[0]',
      'ADX_TABLE_ROUTES[1]',
      'CDC_ROUTES["retail.orders_info"]',
    ]);
  });

  it('logs nothing without it', () => {
    const logger = memoryLogger();
    routerFromEnv({}, logger);
    expect(logger.lines).toEqual([]);
  });

  it.each([
    ['{', 'ADX_TABLE_ROUTES: expected a JSON array of routes'],
    ['[]', 'ADX_TABLE_ROUTES: expected a non-empty JSON array of routes'],
    ['[1]', 'ADX_TABLE_ROUTES: expected ADX_TABLE_ROUTES[0]: a route object, got "1"'],
    ['[{"source":"nodot","table":"T"}]', 'ADX_TABLE_ROUTES: expected ADX_TABLE_ROUTES[0]: source "schema.table", got "nodot"'],
    ['[{"source":"a.b","table":"T"},{"source":"a.b","table":"U"}]', 'ADX_TABLE_ROUTES: expected each source table routed once, got "a.b"'],
  ])('fails fast naming the variable and the place (%s)', (text, message) => {
    expect(() => routerFromEnv({ ADX_TABLE_ROUTES: text })).toThrow(message);
  });
});
