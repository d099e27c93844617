/**
 * The Pulumi program run against Pulumi's mocks (infra/mocks.ts): what it would ask Azure for, checked
 * without the Pulumi CLI or an Azure subscription. Each scenario (ADX created, existing, none) runs the
 * whole program once.
 */
import { beforeAll, describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InfraConfig } from '../../infra/config.js';
import {
  MOCK_APP_PRINCIPAL,
  MOCK_READER_CLIENT,
  MOCK_READER_PRINCIPAL,
  MOCK_SUBSCRIPTION,
  runWithMocks,
  secretValue,
  valueOf,
  type RecordedResource,
} from '../../infra/mocks.js';
import { createPipeline, FUNCTIONS_RUNTIME } from '../../infra/pipeline.js';
import { ROLES } from '../../infra/roles.js';
import {
  CONTAINERS,
  FUNCTIONS_HOST_SETTINGS,
  FUNCTIONS_LEFT_UNSET,
  FUNCTIONS_LEFT_UNSET_WITHOUT_ADX,
  READER_HEALTH_PORT,
  READER_LEFT_UNSET,
  READER_LIBRARY_SETTINGS,
} from '../../infra/settings.js';
import { eventHubNamespace } from '../../src/functions/host/settings.js';
import { sinkTriggerOptions } from '../../src/functions/host/registerSinks.js';
import { loadConfig } from '../../src/reader/config.js';
import { pgSettingsFromEnv } from '../../src/shared/core/postgres.js';
import { loadAdxConfig } from '../../src/shared/adx/config.js';
import { SINKS } from '../../src/shared/sinks/registry.js';
import { entryFiles, reachable, root, settingsRead } from './settingsScan.js';

const PG_PASSWORD = 'pg-password-never-in-settings';
const ES_API_KEY = 'es-api-key-never-in-settings';

function config(adx: InfraConfig['adx'], registryId?: string): InfraConfig {
  return {
    prefix: 'pgcdc',
    topic: 'cdc-events',
    partitions: 4,
    postgres: {
      host: 'pgserver.postgres.database.azure.com',
      port: 5432,
      database: 'shop',
      user: 'cdc_reader',
      auth: 'password',
      password: secretValue(PG_PASSWORD),
      tables: 'retail.orders_info,bank.holding',
    },
    reader: { image: 'myregistry.azurecr.io/pg-cdc-reader:1', registryId, cpu: 0.5, memory: '1Gi' },
    elasticsearch: { url: 'https://my-deployment.es.westeurope.azure.elastic-cloud.com', apiKey: secretValue(ES_API_KEY) },
    adx,
    functions: { maximumInstanceCount: 40, instanceMemoryMB: 2048 },
    alerts: { slotLagBytes: 1024 ** 3, slotLagSeconds: 300, sinkStallMinutes: 15, email: 'ops@example.com' },
  };
}

interface Deployment {
  resources: RecordedResource[];
  outputs: Record<string, unknown>;
}

async function deploy(cfg: InfraConfig): Promise<Deployment> {
  const run = await runWithMocks(() => createPipeline(cfg, 'test'));
  const outputs: Record<string, unknown> = {};
  const entries = Object.entries(run.result) as [string, Parameters<typeof valueOf<string>>[0] | undefined][];
  for (const [k, v] of entries) outputs[k] = v === undefined ? undefined : await valueOf(v);
  return { resources: run.resources, outputs };
}

const ofType = (d: Deployment, type: string) => d.resources.filter((r) => r.type === `azure-native:${type}`);
const one = (d: Deployment, type: string): RecordedResource => {
  const all = ofType(d, type);
  if (all.length !== 1) throw new Error(`expected one ${type}, got ${all.length}`);
  return all[0]!;
};
const byId = (d: Deployment, id: unknown) => d.resources.find((r) => r.id === id);

function appSettings(d: Deployment): Record<string, string> {
  const site = one(d, 'web:WebApp');
  const list = (site.inputs.siteConfig as { appSettings: { name: string; value: string }[] }).appSettings;
  return Object.fromEntries(list.map((s) => [s.name, s.value]));
}

interface EnvVar {
  name: string;
  value?: string;
  secretRef?: string;
}
function readerContainer(d: Deployment) {
  const app = one(d, 'app:ContainerApp');
  const template = app.inputs.template as {
    containers: { env: EnvVar[]; image: string; probes: { type: string; httpGet: { path: string; port: number } }[] }[];
    scale: { minReplicas: number; maxReplicas: number };
  };
  return { app, template, container: template.containers[0]! };
}

/** Role assignments as `principal role scope` lines, scope by the resource's kind and name. */
function roleLines(d: Deployment): string[] {
  const roleName = Object.fromEntries(Object.entries(ROLES).map(([name, guid]) => [guid, name]));
  return ofType(d, 'authorization:RoleAssignment')
    .map((r) => {
      const def = String(r.inputs.roleDefinitionId);
      expect(def).toMatch(new RegExp(`^/subscriptions/${MOCK_SUBSCRIPTION}/providers/Microsoft\\.Authorization/roleDefinitions/[0-9a-f-]{36}$`));
      expect(r.inputs.principalType).toBe('ServicePrincipal');
      const principal =
        r.inputs.principalId === MOCK_APP_PRINCIPAL
          ? 'app'
          : r.inputs.principalId === MOCK_READER_PRINCIPAL
            ? 'reader'
            : `unknown ${String(r.inputs.principalId)}`;
      const scope = String(r.inputs.scope)
        .replace(/^.*\/providers\//, '')
        .replace(/^Microsoft\.Storage\/storageAccounts\/[^/]+\/blobServices\/default\/containers\//, 'container ')
        .replace(/^Microsoft\.EventHub\/namespaces\/[^/]+\/eventhubs\//, 'hub ')
        .replace(/^Microsoft\.KeyVault\/vaults\/[^/]+\/secrets\//, 'secret ')
        .replace(/^Microsoft\.ContainerRegistry\/registries\//, 'registry ');
      return `${principal} ${roleName[def.split('/').pop()!] ?? def} ${scope}`;
    })
    .sort();
}

const documentedCode = {
  functions: () => settingsRead(reachable(entryFiles('src/functions'))),
  reader: () => settingsRead(reachable(['src/reader/main.ts'])),
};

describe('infra: the pipeline with a new ADX cluster', () => {
  let d: Deployment;
  beforeAll(async () => {
    d = await deploy(
      config(
        { mode: 'create', sku: 'Dev(No SLA)_Standard_E2a_v4', database: 'cdc' },
        '/subscriptions/s/resourceGroups/shared/providers/Microsoft.ContainerRegistry/registries/MyRegistry',
      ),
    );
  });

  test('every role assignment: principal, role and scope, and nothing more', () => {
    expect(roleLines(d)).toEqual(
      [
        'app eventHubsDataReceiver hub cdc-events',
        ...['azure-webjobs-hosts', 'azure-webjobs-eventhub', 'azure-webjobs-secrets', 'app-package', 'cdc-sink-deadletter'].map(
          (c) => `app storageBlobDataOwner container ${c}`,
        ),
        'app storageBlobDataReader container cdc-deadletter',
        'app keyVaultSecretsUser secret postgres-password',
        'app keyVaultSecretsUser secret elasticsearch-api-key',
        'reader eventHubsDataSender hub cdc-events',
        'reader storageBlobDataContributor container cdc-deadletter',
        'reader keyVaultSecretsUser secret postgres-password',
        'reader acrPull registry MyRegistry',
      ].sort(),
    );
    // Every scope is a resource this program made (or the registry it was given), never a resource group or subscription.
    for (const r of ofType(d, 'authorization:RoleAssignment')) {
      if (String(r.inputs.scope).includes('/registries/')) continue;
      expect(byId(d, r.inputs.scope)).toBeDefined();
    }
    // ADX: the app is Ingestor and Viewer on the database (ADX's own roles, not Azure RBAC).
    const adx = ofType(d, 'kusto:DatabasePrincipalAssignment').map(
      (r) => `${String(r.inputs.principalId)} ${String(r.inputs.role)} ${String(r.inputs.databaseName)} ${String(r.inputs.principalType)}`,
    );
    expect(adx.sort()).toEqual([`${MOCK_APP_PRINCIPAL} Ingestor cdc App`, `${MOCK_APP_PRINCIPAL} Viewer cdc App`]);
  });

  test('no secret in the app settings or the reader environment: keys nowhere, the two secrets only in Key Vault', () => {
    const settings = appSettings(d);
    expect(settings.ELASTICSEARCH_API_KEY).toBe('@Microsoft.KeyVault(SecretUri=https://pgcdckv.vault.azure.net/secrets/elasticsearch-api-key)');
    expect(settings.PGPASSWORD).toBe('@Microsoft.KeyVault(SecretUri=https://pgcdckv.vault.azure.net/secrets/postgres-password)');
    const { app, container } = readerContainer(d);
    expect(container.env.find((e) => e.name === 'PGPASSWORD')).toEqual({ name: 'PGPASSWORD', secretRef: 'postgres-password' });
    expect((app.inputs.configuration as { secrets: unknown[] }).secrets).toEqual([
      {
        name: 'postgres-password',
        keyVaultUrl: 'https://pgcdckv.vault.azure.net/secrets/postgres-password',
        identity: byName(d, 'managedidentity:UserAssignedIdentity').id,
      },
    ]);
    // The plain secrets appear in exactly one resource each: their Key Vault secret.
    for (const secret of [PG_PASSWORD, ES_API_KEY]) {
      expect(d.resources.filter((r) => JSON.stringify(r.inputs).includes(secret)).map((r) => r.type)).toEqual(['azure-native:keyvault:Secret']);
    }
    // No key, connection string with a key, or password anywhere in the settings.
    const values = [...Object.values(settings), ...container.env.map((e) => e.value ?? '')];
    for (const v of values) expect(v).not.toMatch(/AccountKey=|SharedAccessKey=|Password=|ClientSecret/i);
    const secretSettings = [
      'KAFKA_SASL_PASSWORD',
      'EVENTHUBS_CONNECTION_STRING',
      'ELASTICSEARCH_PASSWORD',
      'ADX_CLIENT_SECRET',
      'SINK_DEADLETTER_CONNECTION_STRING',
      'READER_DEADLETTER_CONNECTION_STRING',
      'AZURE_STORAGE_CONNECTION_STRING',
      'AzureWebJobsStorage',
      'EventHubConnection',
      'DEADLETTER_CONNECTION_STRING',
    ];
    for (const name of secretSettings) {
      expect(settings[name]).toBeUndefined();
      expect(container.env.find((e) => e.name === name)).toBeUndefined();
    }
    // Keys are off where Azure allows it: identities only.
    expect(one(d, 'eventhub:Namespace').inputs).toMatchObject({ disableLocalAuth: true });
    expect(one(d, 'storage:StorageAccount').inputs).toMatchObject({ allowSharedKeyAccess: false, allowBlobPublicAccess: false });
    expect(one(d, 'keyvault:Vault').inputs).toMatchObject({ properties: { enableRbacAuthorization: true } });
  });

  test('the reader: exactly one replica, its image, a managed identity, probes on its health port', () => {
    const { app, template, container } = readerContainer(d);
    expect(template.scale).toEqual({ minReplicas: 1, maxReplicas: 1 });
    expect(template.containers).toHaveLength(1);
    expect(ofType(d, 'app:ContainerApp')).toHaveLength(1);
    expect(container.image).toBe('myregistry.azurecr.io/pg-cdc-reader:1');
    const identity = byName(d, 'managedidentity:UserAssignedIdentity');
    expect(app.inputs.identity).toEqual({ type: 'UserAssigned', userAssignedIdentities: [identity.id] });
    expect((app.inputs.configuration as { registries: unknown }).registries).toEqual([{ server: 'myregistry.azurecr.io', identity: identity.id }]);
    expect(container.env.find((e) => e.name === 'AZURE_CLIENT_ID')?.value).toBe(MOCK_READER_CLIENT);
    const port = Number(container.env.find((e) => e.name === 'HEALTH_PORT')?.value);
    expect(port).toBe(READER_HEALTH_PORT);
    expect(container.probes.map((p) => `${p.type} ${p.httpGet.path} ${p.httpGet.port}`)).toEqual([
      `Startup /healthz ${port}`,
      `Liveness /healthz ${port}`,
      `Readiness /readyz ${port}`,
    ]);
    // No ingress: nothing reaches the reader from outside.
    expect((app.inputs.configuration as { ingress?: unknown }).ingress).toBeUndefined();
  });

  test('the Functions app: Flex Consumption, Node 22 (as package.json requires), identity-based connections', () => {
    expect(one(d, 'web:AppServicePlan').inputs).toMatchObject({ sku: { name: 'FC1', tier: 'FlexConsumption' }, reserved: true });
    const site = one(d, 'web:WebApp');
    expect(site.inputs).toMatchObject({ kind: 'functionapp,linux', identity: { type: 'SystemAssigned' }, httpsOnly: true });
    const fac = site.inputs.functionAppConfig as { runtime: unknown; deployment: { storage: { value: string; authentication: { type: string } } } };
    expect(fac.runtime).toEqual({ name: 'node', version: '22' });
    expect(FUNCTIONS_RUNTIME.version).toBe('22');
    const engines = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    expect(engines).toMatch(/^>=22\./);
    expect(fac.deployment.storage).toMatchObject({
      value: 'https://pgcdcstore.blob.core.windows.net/app-package',
      authentication: { type: 'SystemAssignedIdentity' },
    });
    const settings = appSettings(d);
    // Flex Consumption refuses these as app settings: the runtime is functionAppConfig's.
    for (const name of ['FUNCTIONS_WORKER_RUNTIME', 'FUNCTIONS_EXTENSION_VERSION', 'WEBSITE_NODE_DEFAULT_VERSION', 'WEBSITE_RUN_FROM_PACKAGE'])
      expect(settings[name]).toBeUndefined();
    expect(settings.EventHubConnection__fullyQualifiedNamespace).toBe('pgcdc-eh.servicebus.windows.net');
    expect(settings.AzureWebJobsStorage__accountName).toBe('pgcdcstore');
    expect(eventHubNamespace(settings)).toBe('pgcdc-eh.servicebus.windows.net');
    expect(d.outputs).toMatchObject({
      functionAppName: 'pgcdc-func',
      functionAppHostName: 'pgcdc-func.azurewebsites.net',
      adxClusterUrl: 'https://pgcdcadx.westeurope.kusto.windows.net',
      adxDatabase: 'cdc',
    });
  });

  test("Event Hubs Standard with Kafka, the reader's hub, and one consumer group per sink, as the sinks name them", () => {
    expect(one(d, 'eventhub:Namespace').inputs).toMatchObject({ sku: { name: 'Standard', tier: 'Standard' }, kafkaEnabled: true });
    const hub = one(d, 'eventhub:EventHub');
    expect(hub.inputs).toMatchObject({ eventHubName: loadConfig({ KAFKA_BROKERS: 'x:9093' }).topic, partitionCount: 4 });
    const groups = ofType(d, 'eventhub:ConsumerGroup');
    expect(groups.map((g) => g.inputs.consumerGroupName).sort()).toEqual(SINKS.map((s) => s.defaultConsumerGroup).sort());
    expect(new Set(groups.map((g) => g.inputs.eventHubName))).toEqual(new Set([hub.inputs.eventHubName]));
    // The app settings name those groups, and each sink's trigger reads its own.
    const settings = appSettings(d);
    for (const sink of SINKS) {
      expect(settings[sink.consumerGroupSetting]).toBe(sink.defaultConsumerGroup);
      expect(sinkTriggerOptions(sink, settings)).toMatchObject({
        consumerGroup: `%${sink.consumerGroupSetting}%`,
        eventHubName: '%CDC_TOPIC%',
        connection: 'EventHubConnection',
      });
    }
    expect(settings.CDC_TOPIC).toBe(hub.inputs.eventHubName);
    expect(readerContainer(d).container.env.find((e) => e.name === 'CDC_TOPIC')?.value).toBe(hub.inputs.eventHubName);
  });

  test('the storage account holds the Functions host, the dead letters and the claim check, each in its container', () => {
    expect(ofType(d, 'storage:StorageAccount')).toHaveLength(1);
    expect(
      ofType(d, 'storage:BlobContainer')
        .map((c) => c.inputs.containerName)
        .sort(),
    ).toEqual(Object.values(CONTAINERS).sort());
    const settings = appSettings(d);
    expect(settings).toMatchObject({
      SINK_DEADLETTER_CONTAINER: CONTAINERS.sinkDeadLetters,
      SINK_DEADLETTER_ACCOUNT_URL: 'https://pgcdcstore.blob.core.windows.net',
    });
    expect(readerContainer(d).container.env).toEqual(expect.arrayContaining([{ name: 'DEADLETTER_CONTAINER', value: CONTAINERS.claimCheck }]));
  });

  test("the app settings are exactly the settings the Functions code reads (set, or left unset for a reason), plus the host's own", () => {
    const settings = appSettings(d);
    const read = documentedCode.functions();
    const set = Object.keys(settings);
    // Each name set is read by the code, or is the host's.
    expect(set.filter((n) => !read.has(n) && !(n in FUNCTIONS_HOST_SETTINGS))).toEqual([]);
    // Each name the code reads is set or left unset on purpose, never both, and the lists name nothing the code does not read.
    expect([...read].filter((n) => !(n in settings) && !(n in FUNCTIONS_LEFT_UNSET)).sort()).toEqual([]);
    expect(set.filter((n) => n in FUNCTIONS_LEFT_UNSET)).toEqual([]);
    expect(Object.keys(FUNCTIONS_LEFT_UNSET).filter((n) => !read.has(n))).toEqual([]);
    expect(Object.keys(FUNCTIONS_HOST_SETTINGS).filter((n) => !(n in settings) && n !== 'AzureWebJobs.adxSink.Disabled')).toEqual([]);
    // And the code's own loaders accept them.
    expect(loadAdxConfig(settings)).toMatchObject({
      clusterUrl: 'https://pgcdcadx.westeurope.kusto.windows.net',
      database: 'cdc',
      auth: { kind: 'managed-identity' },
    });
  });

  test("the reader's environment is exactly what the reader reads (set, or left unset for a reason), and passes its own validation", () => {
    const { container } = readerContainer(d);
    const env = Object.fromEntries(container.env.map((e) => [e.name, e.value ?? `<secret ${e.secretRef}>`]));
    const read = documentedCode.reader();
    const set = Object.keys(env);
    expect(set.filter((n) => !read.has(n) && !(n in READER_LIBRARY_SETTINGS))).toEqual([]);
    expect([...read].filter((n) => !(n in env) && !(n in READER_LEFT_UNSET)).sort()).toEqual([]);
    expect(set.filter((n) => n in READER_LEFT_UNSET)).toEqual([]);
    expect(Object.keys(READER_LEFT_UNSET).filter((n) => !read.has(n))).toEqual([]);
    const config = loadConfig(env);
    expect(config.kafka).toMatchObject({ brokers: ['pgcdc-eh.servicebus.windows.net:9093'], securityProtocol: 'SASL_SSL', saslMechanism: 'OAUTHBEARER' });
    expect(config.topic).toBe('cdc-events');
  });
});

function byName(d: Deployment, type: string): RecordedResource {
  return one(d, type);
}

describe('infra: ADX existing, or none', () => {
  test('an existing cluster: no cluster created, the roles on its database, its URL from Azure', async () => {
    const d = await deploy(
      config({ mode: 'existing', clusterId: '/subscriptions/s/resourceGroups/data/providers/Microsoft.Kusto/clusters/shared', database: 'cdc' }),
    );
    expect(ofType(d, 'kusto:Cluster')).toEqual([]);
    expect(ofType(d, 'kusto:ReadWriteDatabase')).toEqual([]);
    const assignments = ofType(d, 'kusto:DatabasePrincipalAssignment');
    expect(assignments.map((a) => [a.inputs.clusterName, a.inputs.resourceGroupName, a.inputs.databaseName, a.inputs.role])).toEqual([
      ['shared', 'data', 'cdc', 'Ingestor'],
      ['shared', 'data', 'cdc', 'Viewer'],
    ]);
    expect(appSettings(d)).toMatchObject({ ADX_CLUSTER_URL: 'https://shared.northeurope.kusto.windows.net', ADX_DATABASE: 'cdc' });
    expect(roleLines(d).filter((l) => l.includes('acrPull'))).toEqual([]);
  });

  test('no ADX: no ADX resource, the ADX sink function disabled, its settings left unset on purpose', async () => {
    const d = await deploy(config({ mode: 'none' }));
    expect(d.resources.filter((r) => r.type.startsWith('azure-native:kusto:'))).toEqual([]);
    const settings = appSettings(d);
    expect(settings['AzureWebJobs.adxSink.Disabled']).toBe('true');
    const read = documentedCode.functions();
    const unset = { ...FUNCTIONS_LEFT_UNSET, ...FUNCTIONS_LEFT_UNSET_WITHOUT_ADX };
    expect([...read].filter((n) => !(n in settings) && !(n in unset)).sort()).toEqual([]);
    expect(Object.keys(settings).filter((n) => n in unset)).toEqual([]);
    // The consumer groups stay one per sink: enabling ADX later needs no hub change.
    expect(ofType(d, 'eventhub:ConsumerGroup')).toHaveLength(SINKS.length);
  });
});

describe('postgresAuth=entra', () => {
  test('the reader signs in with its managed identity: PG_AUTH=entra, PGUSER its name, no password secret or Key Vault role', async () => {
    const base = config({ mode: 'none' });
    const e = await deploy({ ...base, postgres: { ...base.postgres, auth: 'entra', password: undefined } });
    const { app, container } = readerContainer(e);
    const env = Object.fromEntries(container.env.map((v) => [v.name, v.value ?? v.secretRef]));
    expect(env.PG_AUTH).toBe('entra');
    expect(env.PGPASSWORD).toBeUndefined();
    expect(env.PGSSLMODE).toBe('verify-full');
    // The identity's name (its PostgreSQL role's name), not the password role's postgresUser.
    expect(env.PGUSER).toMatch(/reader-id/);
    expect(env.AZURE_CLIENT_ID).toBeDefined();
    expect((app.inputs.configuration as { secrets: unknown[] }).secrets).toEqual([]);
    expect(ofType(e, 'keyvault:Secret').map((r) => String(r.inputs.secretName))).toEqual(['elasticsearch-api-key']);
    expect(roleLines(e).filter((l) => l.includes('postgres-password'))).toEqual([]);
    expect(appSettings(e).PGPASSWORD).toBeUndefined();
    expect(appSettings(e).PGHOST).toBeUndefined();
    // What the reader's own config makes of this environment: entra with TLS, no password.
    const pgEnv = Object.fromEntries(Object.entries(env).filter(([k]) => k.startsWith('PG')));
    expect(pgSettingsFromEnv(pgEnv)).toMatchObject({ auth: 'entra', password: undefined, sslMode: 'verify-full' });
  });
});
