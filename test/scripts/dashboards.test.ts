/**
 * The dashboards shipped as files (scripts/dashboards.ts): the committed files are the generator's
 * output; the ADX dashboard's tiles are queries/*.kql verbatim and pass the KQL language service
 * against the schema adx:setup creates; the Kibana saved objects have the shape Kibana's import
 * reads (type, id, attributes, references that resolve inside the file), and their data view and
 * fields exist on a real Elasticsearch after es:setup. Kibana itself cannot run here (no
 * distribution in the reachable registries), so the import is not tried against a real Kibana.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { buildAdxDashboard } from '../../scripts/dashboards.js';
import {
  ADX_DASHBOARD_FILE,
  ADX_SCHEMA_VERSION,
  ADX_TILES,
  adxDashboardText,
  buildKibanaSavedObjects,
  KIBANA_FILE,
  ORDERS_LIVE_ALIAS,
  REPO_ROOT,
  toNdjson,
  type KibanaObject,
} from '../../scripts/dashboards.js';
import { adxRoutes } from '../../src/shared/adx/config.js';
import { setupElasticsearch } from '../../src/shared/elasticsearch/setup.js';
import { DEFAULT_ROUTES, Router } from '../../src/shared/routing/routes.js';
import { databaseFor, validateKql } from '../shared/adx/helpers/kqlValidator.js';
import { cleanup, testClient, testRoutes, uniqueIndex } from '../shared/esTestKit.js';

describe('ADX dashboard (deploy/dashboards/adx-dashboard.json)', () => {
  const dashboard = JSON.parse(readFileSync(ADX_DASHBOARD_FILE, 'utf8')) as ReturnType<typeof buildAdxDashboard>;

  it('is the generated file (npm run dashboards)', () => {
    expect(readFileSync(ADX_DASHBOARD_FILE, 'utf8')).toBe(adxDashboardText());
  });

  it('has the shape of the documented schema version, with every reference resolved', () => {
    expect(dashboard.$schema).toBe(`https://dataexplorer.azure.com/static/d/schema/${ADX_SCHEMA_VERSION}/dashboard.json`);
    expect(dashboard.schema_version).toBe(ADX_SCHEMA_VERSION);
    const ids = [dashboard.id, ...dashboard.tiles.map((t) => t.id), ...dashboard.queries.map((q) => q.id), ...dashboard.pages.map((p) => p.id)];
    expect(new Set(ids).size).toBe(ids.length);
    for (const tile of dashboard.tiles) {
      expect(dashboard.queries.map((q) => q.id)).toContain(tile.queryRef.queryId);
      expect(dashboard.pages.map((p) => p.id)).toContain(tile.pageId);
    }
    for (const query of dashboard.queries) expect(dashboard.dataSources.map((d) => d.id)).toContain(query.dataSource.dataSourceId);
    expect(dashboard.dataSources).toEqual([
      expect.objectContaining({ kind: 'manual-kusto', clusterUri: expect.stringMatching(/^https:\/\//), database: 'cdc' }),
    ]);
  });

  it('lays the tiles on the 24-column grid without overlaps', () => {
    for (const page of dashboard.pages) {
      const tiles = dashboard.tiles.filter((t) => t.pageId === page.id).map((t) => t.layout);
      for (const a of tiles) expect(a.x + a.width).toBeLessThanOrEqual(24);
      for (const [i, a] of tiles.entries())
        for (const b of tiles.slice(i + 1)) expect(a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height).toBe(false);
    }
  });

  it("has the source documents' analyses and the change-history questions", () => {
    expect(dashboard.tiles.map((t) => t.title)).toEqual(
      expect.arrayContaining([
        'Orders per city',
        'Average sales per city',
        'Total sales per city',
        'Orders over the day',
        "Stock type changes of a user's holdings",
        "Quantity changes of a user's holdings",
        'Most sold stock between two dates',
      ]),
    );
  });

  const routes = adxRoutes(new Router(DEFAULT_ROUTES));
  it.each(ADX_TILES.map((t) => [t.file]))('the tile of %s runs the file verbatim, valid KQL against the configured schema', (file) => {
    const tile = dashboard.tiles.find((t) => t.description === `queries/${file}`)!;
    const query = dashboard.queries.find((q) => q.id === tile.queryRef.queryId)!;
    expect(query.text).toBe(readFileSync(join(REPO_ROOT, 'queries', file), 'utf8').trimEnd());
    expect(validateKql(query.text, databaseFor(routes))).toEqual([]);
  });
});

describe('Kibana saved objects (deploy/dashboards/kibana.ndjson)', () => {
  const text = readFileSync(KIBANA_FILE, 'utf8');
  const objects = text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as KibanaObject);
  const ofType = (type: string) => objects.filter((o) => o.type === type);

  it('is the generated file (npm run dashboards), one object per line', () => {
    expect(text).toBe(toNdjson(buildKibanaSavedObjects()));
    expect(objects.map((o) => o.type).sort()).toEqual(['dashboard', 'index-pattern', 'lens', 'lens', 'lens', 'lens', 'search']);
  });

  it('has the saved-object shape: type, unique id, attributes with a title, references, migration versions', () => {
    expect(new Set(objects.map((o) => `${o.type}:${o.id}`)).size).toBe(objects.length);
    for (const o of objects) {
      expect(Object.keys(o).sort()).toEqual(['attributes', 'coreMigrationVersion', 'id', 'managed', 'references', 'type', 'typeMigrationVersion']);
      expect(o.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(typeof o.attributes.title).toBe('string');
      expect(o.typeMigrationVersion).toMatch(/^\d+\.\d+\.\d+$/);
      for (const r of o.references) expect(objects.some((t) => t.type === r.type && t.id === r.id)).toBe(true);
    }
  });

  it('points the data view at the -live alias of the default orders index, with purchase_time as time field', () => {
    expect(ofType('index-pattern')).toEqual([
      expect.objectContaining({ attributes: expect.objectContaining({ title: ORDERS_LIVE_ALIAS, timeFieldName: 'purchase_time' }) }),
    ]);
    expect(ORDERS_LIVE_ALIAS).toBe('cdc-retail.orders_info-live');
  });

  it('names every reference where the attributes use it (search source, Lens layers, dashboard panels)', () => {
    const search = ofType('search')[0]!;
    const source = JSON.parse((search.attributes.kibanaSavedObjectMeta as { searchSourceJSON: string }).searchSourceJSON) as { indexRefName: string };
    expect(search.references.map((r) => r.name)).toEqual([source.indexRefName]);
    for (const lens of ofType('lens')) {
      const layers = Object.keys((lens.attributes.state as { datasourceStates: { formBased: { layers: object } } }).datasourceStates.formBased.layers);
      expect(lens.references.map((r) => r.name).sort()).toEqual(layers.map((l) => `indexpattern-datasource-layer-${l}`).sort());
    }
    const dashboard = ofType('dashboard')[0]!;
    const panels = JSON.parse(dashboard.attributes.panelsJSON as string) as {
      panelIndex: string;
      panelRefName: string;
      type: string;
      gridData: { i: string };
    }[];
    expect(dashboard.references.map((r) => r.name).sort()).toEqual(panels.map((p) => `${p.panelIndex}:${p.panelRefName}`).sort());
    for (const p of panels) expect(dashboard.references.find((r) => r.name === `${p.panelIndex}:${p.panelRefName}`)?.type).toBe(p.type);
    expect(panels.map((p) => p.type).sort()).toEqual(['lens', 'lens', 'lens', 'lens', 'search']);
  });

  describe('against Elasticsearch after es:setup', () => {
    const client = testClient();
    const index = uniqueIndex('kibana');
    const historyIndex = `${index}-history`;
    afterAll(async () => {
      await cleanup(client, [index, `${index}-holding`, historyIndex]);
      await client.indices.deleteIndexTemplate({ name: `cdc-history-${historyIndex}` }).catch(() => undefined);
      await client.close();
    });

    it('the data view title is an alias es:setup created, and every field the objects use is in its mapping with the type they need', async () => {
      await setupElasticsearch(client, { router: new Router(testRoutes(index)), replicas: 0, historyIndex });
      const objects = buildKibanaSavedObjects(index);
      const title = objects.find((o) => o.type === 'index-pattern')!.attributes.title as string;
      expect(title).toBe(`${index}-live`);
      expect(await client.indices.existsAlias({ name: title })).toBe(true);
      const caps = await client.fieldCaps({ index: title, fields: '*' });
      const typeOf = (field: string) => Object.keys(caps.fields[field] ?? {})[0];
      const used: [string, string][] = [['purchase_time', 'date']];
      for (const lens of objects.filter((o) => o.type === 'lens')) {
        const layers = (
          lens.attributes.state as {
            datasourceStates: { formBased: { layers: Record<string, { columns: Record<string, { sourceField: string; dataType: string }> }> } };
          }
        ).datasourceStates.formBased.layers;
        for (const column of Object.values(layers).flatMap((l) => Object.values(l.columns)))
          if (column.sourceField !== '___records___') used.push([column.sourceField, column.dataType]);
      }
      for (const column of objects.find((o) => o.type === 'search')!.attributes.columns as string[]) used.push([column, '']);
      const expected: Record<string, string[]> = {
        date: ['date'],
        number: ['long', 'integer', 'double', 'float'],
        string: ['keyword'],
        '': ['long', 'keyword', 'text', 'date'],
      };
      for (const [field, dataType] of used) expect([field, expected[dataType]!.includes(typeOf(field) ?? 'missing')]).toEqual([field, true]);
    });
  });
});
