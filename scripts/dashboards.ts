/**
 * The dashboards shipped as files, generated from one source each:
 * - deploy/dashboards/adx-dashboard.json: an Azure Data Explorer dashboard (the JSON that "Import
 *   dashboard from file" reads, schema 60 of https://dataexplorer.azure.com/static/d/schema/60/dashboard.json)
 *   whose tiles' queries are the files of queries/*.kql, verbatim;
 * - deploy/dashboards/kibana.ndjson: Kibana saved objects (data view on the orders index's `-live`
 *   alias, a saved search, Lens visualizations and a dashboard of the same order analyses), for
 *   `npm run kibana:import`.
 *
 * `npm run dashboards -- [--cluster <https://...kusto.windows.net>] [--database <name>]` rewrites
 * both; test/scripts/dashboards.test.ts checks that the committed files equal this output.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DEFAULT_ROUTES } from '../src/shared/routing/routes.js';

/** The repository root, from the source file and from its build in dist/scripts alike. */
export const REPO_ROOT = (() => {
  const here = dirname(fileURLToPath(import.meta.url));
  return basename(dirname(here)) === 'dist' ? resolve(here, '..', '..') : resolve(here, '..');
})();
export const ADX_DASHBOARD_FILE = join(REPO_ROOT, 'deploy', 'dashboards', 'adx-dashboard.json');
export const KIBANA_FILE = join(REPO_ROOT, 'deploy', 'dashboards', 'kibana.ndjson');

/** Stable ids (a UUID-shaped SHA-256 of a seed): regenerating gives the same file, re-importing overwrites. */
export function stableId(seed: string): string {
  const h = createHash('sha256').update(`pg-cdc-functions:${seed}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

// ---------------------------------------------------------------------------------------------
// Azure Data Explorer
// ---------------------------------------------------------------------------------------------

export const ADX_SCHEMA_VERSION = '60';
export const ADX_DEFAULT_CLUSTER = 'https://mycluster.westeurope.kusto.windows.net/';
export const ADX_DEFAULT_DATABASE = 'cdc';

interface AdxTileSpec {
  page: 'Orders' | 'Change history';
  file: string;
  title: string;
  visualType: 'table' | 'column' | 'line' | 'pie' | 'timechart' | 'card';
  layout: { x: number; y: number; width: number; height: number };
}

/** The source documents' analyses: orders per city, average and total sales per city, orders over the day; the change-history questions. */
export const ADX_TILES: readonly AdxTileSpec[] = [
  { page: 'Orders', file: 'orders-count-by-city.kql', title: 'Orders per city', visualType: 'line', layout: { x: 0, y: 0, width: 12, height: 8 } },
  {
    page: 'Orders',
    file: 'orders-avg-sales-by-city.kql',
    title: 'Average sales per city',
    visualType: 'column',
    layout: { x: 12, y: 0, width: 12, height: 8 },
  },
  { page: 'Orders', file: 'orders-total-by-city.kql', title: 'Total sales per city', visualType: 'pie', layout: { x: 0, y: 8, width: 12, height: 8 } },
  { page: 'Orders', file: 'orders-by-time-of-day.kql', title: 'Orders over the day', visualType: 'timechart', layout: { x: 12, y: 8, width: 12, height: 8 } },
  {
    page: 'Orders',
    file: 'orders-by-time-of-day-per-city.kql',
    title: 'Orders over the day, per city',
    visualType: 'column',
    layout: { x: 0, y: 16, width: 24, height: 8 },
  },
  { page: 'Orders', file: 'orders-new-york-amounts.kql', title: 'New York orders', visualType: 'table', layout: { x: 0, y: 24, width: 12, height: 8 } },
  {
    page: 'Orders',
    file: 'orders-changes-of-one-order.kql',
    title: 'Every version of one order',
    visualType: 'table',
    layout: { x: 12, y: 24, width: 12, height: 8 },
  },
  {
    page: 'Change history',
    file: 'holding-stock-type-changes-by-user.kql',
    title: "Stock type changes of a user's holdings",
    visualType: 'card',
    layout: { x: 0, y: 0, width: 8, height: 6 },
  },
  {
    page: 'Change history',
    file: 'holding-quantity-changes-by-user.kql',
    title: "Quantity changes of a user's holdings",
    visualType: 'card',
    layout: { x: 8, y: 0, width: 8, height: 6 },
  },
  {
    page: 'Change history',
    file: 'holding-most-sold-stock.kql',
    title: 'Most sold stock between two dates',
    visualType: 'table',
    layout: { x: 16, y: 0, width: 8, height: 6 },
  },
  {
    page: 'Change history',
    file: 'holding-current.kql',
    title: 'Current holdings per user',
    visualType: 'table',
    layout: { x: 0, y: 6, width: 12, height: 8 },
  },
  {
    page: 'Change history',
    file: 'truncates.kql',
    title: 'Truncates of the routed tables',
    visualType: 'table',
    layout: { x: 12, y: 6, width: 12, height: 8 },
  },
];

export interface AdxDashboardOptions {
  clusterUri?: string;
  database?: string;
  /** Where the .kql files are (default queries/ of the repository). */
  queriesDir?: string;
}

export function buildAdxDashboard(options: AdxDashboardOptions = {}) {
  const queriesDir = options.queriesDir ?? join(REPO_ROOT, 'queries');
  const dataSourceId = stableId('adx:data-source');
  const pages = [...new Set(ADX_TILES.map((t) => t.page))].map((name) => ({ id: stableId(`adx:page:${name}`), name }));
  const pageId = (name: string) => pages.find((p) => p.name === name)!.id;
  const queries = ADX_TILES.map((t) => ({
    id: stableId(`adx:query:${t.file}`),
    dataSource: { kind: 'inline', dataSourceId },
    // The file verbatim (its comments included): one source for the ready query and the tile.
    text: readFileSync(join(queriesDir, t.file), 'utf8').trimEnd(),
    usedVariables: [] as string[],
  }));
  const tiles = ADX_TILES.map((t) => ({
    id: stableId(`adx:tile:${t.file}`),
    title: t.title,
    description: `queries/${t.file}`,
    visualType: t.visualType,
    pageId: pageId(t.page),
    layout: t.layout,
    queryRef: { kind: 'query', queryId: stableId(`adx:query:${t.file}`) },
    visualOptions: {},
  }));
  return {
    $schema: `https://dataexplorer.azure.com/static/d/schema/${ADX_SCHEMA_VERSION}/dashboard.json`,
    id: stableId('adx:dashboard'),
    eTag: stableId(`adx:etag:${ADX_TILES.map((t) => t.file).join(',')}`),
    schema_version: ADX_SCHEMA_VERSION,
    title: 'pg-cdc-functions: orders and change history',
    autoRefresh: { enabled: true, defaultInterval: '5m', minInterval: '1m' },
    baseQueries: [],
    tiles,
    parameters: [],
    dataSources: [
      {
        id: dataSourceId,
        kind: 'manual-kusto',
        scopeId: 'kusto',
        name: 'CDC database',
        clusterUri: options.clusterUri ?? ADX_DEFAULT_CLUSTER,
        database: options.database ?? ADX_DEFAULT_DATABASE,
      },
    ],
    pages,
    queries,
  };
}

// ---------------------------------------------------------------------------------------------
// Kibana
// ---------------------------------------------------------------------------------------------

/** The orders index of the default routes, and the alias es:setup creates on it (documents not soft-deleted). */
export const ORDERS_INDEX = DEFAULT_ROUTES['retail.orders_info']!.elasticsearch!.index;
export const ORDERS_LIVE_ALIAS = `${ORDERS_INDEX}-live`;

export interface KibanaObject {
  type: 'index-pattern' | 'search' | 'lens' | 'dashboard';
  id: string;
  attributes: Record<string, unknown>;
  references: { name: string; type: string; id: string }[];
  coreMigrationVersion: string;
  typeMigrationVersion: string;
  managed: boolean;
}

/** Versions of the document shapes below (Kibana migrates older shapes forward on import, up to 8.19). */
const MIGRATION = { core: '8.8.0', 'index-pattern': '8.0.0', search: '8.0.0', lens: '8.9.0', dashboard: '8.9.0' } as const;

const object = (type: KibanaObject['type'], id: string, attributes: Record<string, unknown>, references: KibanaObject['references'] = []): KibanaObject => ({
  type,
  id,
  attributes,
  references,
  coreMigrationVersion: MIGRATION.core,
  typeMigrationVersion: MIGRATION[type],
  managed: false,
});

const EMPTY_QUERY = { query: '', language: 'kuery' };

interface LensColumn {
  label: string;
  dataType: 'string' | 'number' | 'date';
  operationType: 'terms' | 'count' | 'average' | 'sum' | 'date_histogram';
  sourceField: string;
  isBucketed: boolean;
  scale: 'ordinal' | 'ratio' | 'interval';
  params?: Record<string, unknown>;
}

const cityTerms = (orderBy: string): LensColumn => ({
  label: 'City',
  dataType: 'string',
  operationType: 'terms',
  sourceField: 'city.keyword',
  isBucketed: true,
  scale: 'ordinal',
  params: { size: 20, orderBy: { type: 'column', columnId: orderBy }, orderDirection: 'desc', otherBucket: true, missingBucket: false },
});

/** One Lens visualization on the data view: one layer `layer`, the columns in order (buckets first). */
function lens(
  id: string,
  title: string,
  dataViewId: string,
  columns: Record<string, LensColumn>,
  visualizationType: 'lnsXY' | 'lnsPie',
  visualization: (layer: string) => Record<string, unknown>,
) {
  const layer = 'layer';
  return object(
    'lens',
    id,
    {
      title,
      description: '',
      visualizationType,
      state: {
        visualization: visualization(layer),
        query: EMPTY_QUERY,
        filters: [],
        datasourceStates: { formBased: { layers: { [layer]: { columns, columnOrder: Object.keys(columns), incompleteColumns: {} } } } },
        internalReferences: [],
        adHocDataViews: {},
      },
    },
    [{ type: 'index-pattern', id: dataViewId, name: `indexpattern-datasource-layer-${layer}` }],
  );
}

const xy = (seriesType: string, x: string, y: string) => (layerId: string) => ({
  legend: { isVisible: true, position: 'right' },
  valueLabels: 'hide',
  preferredSeriesType: seriesType,
  layers: [{ layerId, layerType: 'data', seriesType, xAccessor: x, accessors: [y] }],
});

/** `ordersIndex`: the orders index whose `-live` alias the data view reads (the default route's unless told). */
export function buildKibanaSavedObjects(ordersIndex: string = ORDERS_INDEX): KibanaObject[] {
  const dataViewId = stableId('kibana:data-view:orders-live');
  const dataView = object('index-pattern', dataViewId, {
    title: `${ordersIndex}-live`,
    name: 'CDC orders (live)',
    timeFieldName: 'purchase_time',
    // Kibana reads the field list from the mapping at run time; none stored here.
    fields: '[]',
    fieldFormatMap: '{}',
    runtimeFieldMap: '{}',
    allowNoIndex: true,
  });
  const search = object(
    'search',
    stableId('kibana:search:orders'),
    {
      title: 'CDC orders (live)',
      description: 'Orders as they are now: the -live alias leaves soft-deleted ones out.',
      columns: ['orderid', 'custid', 'city', 'amount'],
      sort: [['purchase_time', 'desc']],
      grid: {},
      hideChart: false,
      isTextBasedQuery: false,
      kibanaSavedObjectMeta: {
        searchSourceJSON: JSON.stringify({ query: EMPTY_QUERY, filter: [], indexRefName: 'kibanaSavedObjectMeta.searchSourceJSON.index' }),
      },
    },
    [{ name: 'kibanaSavedObjectMeta.searchSourceJSON.index', type: 'index-pattern', id: dataViewId }],
  );
  const count: LensColumn = { label: 'Orders', dataType: 'number', operationType: 'count', sourceField: '___records___', isBucketed: false, scale: 'ratio' };
  const visualizations = [
    lens(
      stableId('kibana:lens:orders-per-city'),
      'Orders per city',
      dataViewId,
      { city: cityTerms('orders'), orders: count },
      'lnsXY',
      xy('bar', 'city', 'orders'),
    ),
    lens(
      stableId('kibana:lens:avg-sales-per-city'),
      'Average sales per city',
      dataViewId,
      {
        city: cityTerms('avg'),
        avg: { label: 'Average amount', dataType: 'number', operationType: 'average', sourceField: 'amount', isBucketed: false, scale: 'ratio' },
      },
      'lnsXY',
      xy('bar', 'city', 'avg'),
    ),
    lens(
      stableId('kibana:lens:total-sales-per-city'),
      'Total sales per city',
      dataViewId,
      {
        city: cityTerms('total'),
        total: { label: 'Total amount', dataType: 'number', operationType: 'sum', sourceField: 'amount', isBucketed: false, scale: 'ratio' },
      },
      'lnsPie',
      (layerId) => ({
        shape: 'pie',
        layers: [
          {
            layerId,
            layerType: 'data',
            primaryGroups: ['city'],
            metrics: ['total'],
            numberDisplay: 'percent',
            categoryDisplay: 'default',
            legendDisplay: 'default',
            nestedLegend: false,
          },
        ],
      }),
    ),
    lens(
      stableId('kibana:lens:orders-over-time'),
      'Orders over time',
      dataViewId,
      {
        time: {
          label: 'Purchase time',
          dataType: 'date',
          operationType: 'date_histogram',
          sourceField: 'purchase_time',
          isBucketed: true,
          scale: 'interval',
          params: { interval: 'auto', includeEmptyRows: true, dropPartials: false },
        },
        orders: count,
      },
      'lnsXY',
      xy('bar_stacked', 'time', 'orders'),
    ),
  ];
  const panels: { type: 'lens' | 'search'; id: string; grid: { x: number; y: number; w: number; h: number } }[] = [
    ...visualizations.map((v, i) => ({ type: 'lens' as const, id: v.id, grid: { x: (i % 2) * 24, y: Math.floor(i / 2) * 15, w: 24, h: 15 } })),
    { type: 'search', id: search.id, grid: { x: 0, y: 30, w: 48, h: 15 } },
  ];
  const dashboard = object(
    'dashboard',
    stableId('kibana:dashboard:orders'),
    {
      title: 'CDC orders',
      description: 'The order analyses of the source documents, on the live orders (pg-cdc-functions).',
      panelsJSON: JSON.stringify(
        panels.map((p, i) => ({
          type: p.type,
          gridData: { ...p.grid, i: String(i) },
          panelIndex: String(i),
          embeddableConfig: { enhancements: {} },
          panelRefName: `panel_${i}`,
        })),
      ),
      optionsJSON: JSON.stringify({ useMargins: true, syncColors: false, syncCursor: true, syncTooltips: false, hidePanelTitles: false }),
      timeRestore: true,
      timeFrom: 'now-7d',
      timeTo: 'now',
      refreshInterval: { pause: false, value: 60_000 },
      kibanaSavedObjectMeta: { searchSourceJSON: JSON.stringify({ query: EMPTY_QUERY, filter: [] }) },
    },
    panels.map((p, i) => ({ name: `${i}:panel_${i}`, type: p.type, id: p.id })),
  );
  return [dataView, search, ...visualizations, dashboard];
}

export function toNdjson(objects: readonly KibanaObject[]): string {
  return objects.map((o) => JSON.stringify(o)).join('\n') + '\n';
}

export function adxDashboardText(options: AdxDashboardOptions = {}): string {
  return JSON.stringify(buildAdxDashboard(options), null, 2) + '\n';
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const clusterUri = arg('--cluster');
  const database = arg('--database');
  writeFileSync(ADX_DASHBOARD_FILE, adxDashboardText({ ...(clusterUri ? { clusterUri } : {}), ...(database ? { database } : {}) }));
  writeFileSync(KIBANA_FILE, toNdjson(buildKibanaSavedObjects()));
  process.stdout.write(`wrote ${ADX_DASHBOARD_FILE} (${ADX_TILES.length} tiles) and ${KIBANA_FILE}\n`);
}
