import { describe, expect, it } from '@jest/globals';
import { ConfigError } from '../../src/shared/core/errors.js';
import { memoryLogger } from '../../src/shared/core/logger.js';
import { declaredColumns, DEFAULT_ROUTES, qualifiedName, Router, routerFromEnv } from '../../src/shared/routing/routes.js';

describe('Router (the table catalogue)', () => {
  it('routes configured tables and rejects unknown ones permanently', () => {
    const router = new Router(DEFAULT_ROUTES);
    expect(router.route('retail', 'orders_info').elasticsearch?.index).toBe('cdc-retail.orders_info');
    expect(() => router.route('public', 'nope')).toThrow(expect.objectContaining({ code: 'UNKNOWN_TABLE', canRetry: false }));
  });

  it('fills the wildcard route with the table name; plain lower-case names keep the index they always had', () => {
    const router = new Router({ '*': { elasticsearch: { index: 'cdc-{schema}.{table}' } } });
    expect(router.route('public', 'items')).toEqual({ elasticsearch: { index: 'cdc-public.items' } });
    expect(router.route('sales_2024', 'line$items').elasticsearch?.index).toBe('cdc-sales_2024.line$items');
    expect(router.route('über', 'straße_ñ').elasticsearch?.index).toBe('cdc-über.straße_ñ');
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

/** Elasticsearch's index-name rules (MetadataCreateIndexService.validateIndexOrAliasName), for an index and its alias. */
function expectValidIndexName(name: string): void {
  for (const n of [name, `${name}-live`]) {
    expect(n).toBe(n.toLowerCase());
    expect(n).not.toMatch(/[\\/*?"<>| ,#:]/);
    expect(n).not.toMatch(/^[-_+]/);
    expect(Buffer.byteLength(n)).toBeLessThanOrEqual(255);
  }
}

describe('wildcard routes lower-case names, so mixed-case or quoted tables collide', () => {
  const router = new Router({ '*': { elasticsearch: { index: 'cdc-{schema}.{table}' } } });
  const indexOf = (schema: string, table: string) => router.route(schema, table).elasticsearch!.index;

  it('gives every table its own index: upper case, dots and characters Elasticsearch refuses are escaped as +XX (UTF-8, lower-case hex)', () => {
    expect(indexOf('App', 'T')).toBe('cdc-+41pp.+54');
    expect(indexOf('app', 't')).toBe('cdc-app.t');
    expect(indexOf('a.b', 'c')).toBe('cdc-a+2eb.c');
    expect(indexOf('a', 'b.c')).toBe('cdc-a.b+2ec');
    expect(indexOf('s', 'a+41')).toBe('cdc-s.a+2b41');
    expect(indexOf('s', 'x-live')).toBe('cdc-s.x+2dlive');
    expect(indexOf('s', 'Ä b#c,d:e*f?g"h<i>j|k\\l/m~')).toBe('cdc-s.+c3+84+20b+23c+2cd+3ae+2af+3fg+22h+3ci+3ej+7ck+5cl+2fm+7e');
    const names = [
      'App',
      'APP',
      'app',
      'aPP',
      'a.b',
      'a',
      'b.c',
      'a+2eb',
      'a+41',
      'A',
      '+41',
      'x-y',
      'x y',
      'x_y',
      'İ',
      'i̇',
      'Σ',
      'σ',
      'ς',
      '日本',
      '_x',
      '"q"',
    ];
    const seen = new Map<string, string>();
    for (const schema of names)
      for (const table of names) {
        const index = indexOf(schema, table);
        expectValidIndexName(index);
        expect(seen.get(index) ?? `${schema}|${table}`).toBe(`${schema}|${table}`);
        seen.set(index, `${schema}|${table}`);
        // Read back: the catalogue knows which table the index belongs to.
        expect(router.tableOfIndex(index)).toBe(qualifiedName(schema, table));
      }
  });

  it('bounds long names: at most 250 bytes (room for -live), still matching the template, stable, distinct', () => {
    const long = 'Ü'.repeat(31); // 62 bytes in PostgreSQL, 186 escaped
    const a = indexOf(long, `${long}a`);
    const b = indexOf(long, `${long}b`);
    for (const index of [a, b]) {
      expectValidIndexName(index);
      expect(Buffer.byteLength(index)).toBeLessThanOrEqual(250);
      expect(index).toMatch(/^cdc-[^.]+\.[^.]+~[0-9a-f]{32}$/);
    }
    expect(a).not.toBe(b);
    expect(new Router({ '*': { elasticsearch: { index: 'cdc-{schema}.{table}' } } }).route(long, `${long}a`).elasticsearch?.index).toBe(a);
    // Short enough names are never bounded; a bounded index is never a table's unbounded one (no "~").
    expect(indexOf('x'.repeat(63), 'y'.repeat(63))).toBe(`cdc-${'x'.repeat(63)}.${'y'.repeat(63)}`);
  });

  it.each([
    ['cdc-{table}', 'both {schema} and {table}'],
    ['cdc-all', 'both {schema} and {table}'],
    ['cdc-{schema}{table}', 'a "." between {schema} and {table}'],
    ['cdc-{schema}-{table}', 'a "." between {schema} and {table}'],
    ['{schema}.{table}', 'a lowercase index name that starts with a letter or digit'],
    ['CDC-{schema}.{table}', 'a lowercase index name that starts with a letter or digit'],
    [`${'x'.repeat(190)}-{schema}.{table}`, 'bytes besides the placeholders'],
  ])('refuses a "*" index that cannot give every table its own index (%s)', (index, message) => {
    expect(() => new Router({ '*': { elasticsearch: { index } } })).toThrow(ConfigError);
    expect(() => new Router({ '*': { elasticsearch: { index } } })).toThrow(message);
  });

  it('refuses, at start-up, two tables in one index: naming both tables and the fix', () => {
    expect(() => new Router({ 'a.one': { elasticsearch: { index: 'cdc-x' } }, 'a.two': { elasticsearch: { index: 'cdc-x' } } })).toThrow(
      'CDC_ROUTES: expected one Elasticsearch index per table, but CDC_ROUTES["a.one"] and CDC_ROUTES["a.two"] both write cdc-x (their rows would mix, ' +
        'and a truncate of one soft-deletes the other\'s documents): give one of them its own elasticsearch.index, got "cdc-x"',
    );
    // An index that is another table's -live alias.
    expect(() => new Router({ 'a.one': { elasticsearch: { index: 'cdc-x' } }, 'a.two': { elasticsearch: { index: 'cdc-x-live' } } })).toThrow(
      'CDC_ROUTES["a.one"] and CDC_ROUTES["a.two"] both write cdc-x-live',
    );
    // An entry's index that the "*" entry gives a table without an entry.
    const wildcard = { elasticsearch: { index: 'cdc-{schema}.{table}' } };
    expect(() => new Router({ 'a.one': { elasticsearch: { index: 'cdc-public.items' } }, '*': wildcard })).toThrow(
      'but CDC_ROUTES["a.one"] and table public.items (through CDC_ROUTES["*"]) both write cdc-public.items (their rows would mix, and a truncate of one ' +
        'soft-deletes the other\'s documents): give CDC_ROUTES["a.one"] an index the "*" entry cannot produce, or give public.items an entry of its own',
    );
    expect(() => new Router({ 'a.one': { elasticsearch: { index: 'cdc-public.items-live' } }, '*': wildcard })).toThrow('table public.items (through');
    // An entry whose -live alias is the index the "*" entry gives a table.
    expect(() => new Router({ 'a.one': { elasticsearch: { index: 'cdc-a.b' } }, '*': { elasticsearch: { index: 'cdc-{schema}.{table}-live' } } })).toThrow(
      'CDC_ROUTES["a.one"] and table a.b (through CDC_ROUTES["*"]) both write cdc-a.b',
    );
    // Mixed case in an entry's key is the table's own name: its wildcard index is taken by it.
    expect(() => new Router({ 'a.one': { elasticsearch: { index: 'cdc-app.t' } }, 'App.T': { elasticsearch: { index: 'cdc-app-t' } }, '*': wildcard })).toThrow(
      'table app.t (through',
    );
  });

  it('accepts entries whose index the "*" entry cannot produce, or that name their own table', () => {
    const wildcard = { elasticsearch: { index: 'cdc-{schema}.{table}' } };
    // Its own wildcard index, the table having an entry; another table's wildcard index when that table has an entry too.
    expect(() => new Router({ 'public.items': { elasticsearch: { index: 'cdc-public.items' } }, '*': wildcard })).not.toThrow();
    expect(
      () => new Router({ 'a.one': { elasticsearch: { index: 'cdc-b.two' } }, 'b.two': { elasticsearch: { index: 'cdc-b-two' } }, '*': wildcard }),
    ).not.toThrow();
    // No table's escaped name holds "-" or ends up with "+" in an entry: cdc-a-b.c and cdc-a.b-c are free.
    expect(
      () => new Router({ 'a.one': { elasticsearch: { index: 'cdc-a-b.c' } }, 'a.two': { elasticsearch: { index: 'cdc-a.b-c' } }, '*': wildcard }),
    ).not.toThrow();
    expect(new Router(DEFAULT_ROUTES).tableOfIndex('cdc-bank.holding-live')).toBe('bank.holding');
    expect(new Router({ '*': wildcard }).tableOfIndex('cdc-control')).toBeUndefined();
    expect(new Router({ '*': wildcard }).tableOfIndex('cdc-App.T')).toBeUndefined();
  });

  it('refuses placeholders, upper case and over-long names in an entry: its index is used as written', () => {
    expect(() => new Router({ 'a.b': { elasticsearch: { index: 'cdc-{table}' } } })).toThrow(/no placeholders/);
    expect(() => new Router({ 'a.b': { elasticsearch: { index: 'x'.repeat(251) } } })).toThrow(/at most 250 bytes/);
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
