/** The stack's config (infra/config.ts): defaults, and a bad or missing key named with how to set it. */
import { describe, expect, test } from '@jest/globals';
import { readConfig } from '../../infra/config.js';
import { withConfig } from '../../infra/mocks.js';

const required = {
  postgresHost: 'pgserver.postgres.database.azure.com',
  postgresPassword: 'secret-pw',
  cdcTables: 'retail.orders_info',
  readerImage: 'myregistry.azurecr.io/pg-cdc-reader:1',
  elasticsearchUrl: 'https://es.example',
  elasticsearchApiKey: 'secret-key',
};

describe('infra config', () => {
  test('the required keys and the defaults', () => {
    const cfg = withConfig(required, () => readConfig());
    expect(cfg).toMatchObject({
      prefix: 'pgcdc',
      topic: 'cdc-events',
      partitions: 4,
      postgres: { host: required.postgresHost, port: 5432, database: 'postgres', user: 'cdc_reader', tables: 'retail.orders_info' },
      reader: { image: required.readerImage, registryId: undefined },
      adx: { mode: 'none' },
      alerts: { slotLagBytes: 1024 ** 3, slotLagSeconds: 300, sinkStallMinutes: 15, email: undefined },
    });
    expect(withConfig({ ...required, adxMode: 'create' }, () => readConfig()).adx).toEqual({
      mode: 'create',
      sku: 'Dev(No SLA)_Standard_E2a_v4',
      database: 'cdc',
    });
  });

  test.each([
    [{ postgresHost: undefined }, /postgresHost/],
    [{ elasticsearchApiKey: undefined }, /elasticsearchApiKey/],
    [{ prefix: 'Bad-Prefix' }, /Pulumi config prefix: expected 2-10 lower-case letters.*got "Bad-Prefix" \(set it with: pulumi config set prefix <value>\)/],
    [{ partitions: '64' }, /partitions: expected an integer 1-32/],
    [{ adxMode: 'maybe' }, /adxMode: expected none, create or existing/],
    [{ adxMode: 'existing' }, /adxClusterId: expected the resource id of the ADX cluster/],
    [{ readerRegistryId: 'myregistry' }, /readerRegistryId: expected the resource id of an Azure Container Registry/],
  ])('%j is refused, naming the key', (change, message) => {
    const values: Record<string, string> = { ...required };
    for (const [k, v] of Object.entries(change)) {
      if (v === undefined) delete values[k];
      else values[k] = v;
    }
    expect(() => withConfig(values, () => readConfig())).toThrow(message);
  });
});
