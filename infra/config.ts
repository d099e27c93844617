/**
 * The stack's parameters (Pulumi config, `pulumi config set <key> <value>`; README "Deploy to Azure"
 * lists them). Everything Azure itself can name or create is created; what must exist already (the
 * PostgreSQL Flexible Server, Elasticsearch, the reader's image) is a parameter.
 */
import * as pulumi from '@pulumi/pulumi';

export type AdxMode = 'none' | 'create' | 'existing';

export interface InfraConfig {
  /** Short prefix of every resource name (lower-case letters and digits). */
  prefix: string;
  /** The event hub (Kafka topic) the reader publishes to and the sinks read: the code's `CDC_TOPIC`. */
  topic: string;
  partitions: number;
  /** Existing PostgreSQL Flexible Server (README "PostgreSQL Flexible Server" has its `az` settings). */
  postgres: {
    host: string;
    port: number;
    database: string;
    user: string;
    /** `entra` (preferred): the reader signs in with its managed identity (`PG_AUTH=entra`), no password anywhere; `password`: PGPASSWORD. */
    auth: 'password' | 'entra';
    /** With `auth: password`: kept in Key Vault; the reader and the status function get Key Vault references. */
    password: pulumi.Output<string> | undefined;
    /** `CDC_TABLES`: required, since Azure's admin is no superuser and cannot create a publication FOR ALL TABLES. */
    tables: string;
  };
  reader: { image: string; registryId: string | undefined; cpu: number; memory: string };
  elasticsearch: { url: string; apiKey: pulumi.Output<string> };
  adx: { mode: 'none' } | { mode: 'create'; sku: string; database: string } | { mode: 'existing'; clusterId: string; database: string };
  functions: { maximumInstanceCount: number; instanceMemoryMB: number };
  alerts: { slotLagBytes: number; slotLagSeconds: number; sinkStallMinutes: number; email: string | undefined };
}

function fail(key: string, expected: string, got: unknown): never {
  throw new Error(
    `Pulumi config ${key}: expected ${expected}, got ${got === undefined ? 'nothing' : JSON.stringify(got)} (set it with: pulumi config set ${key} <value>)`,
  );
}

/** Reads and checks the stack's config; a missing or bad key fails naming the key and how to set it. */
export function readConfig(config = new pulumi.Config()): InfraConfig {
  const prefix = config.get('prefix') ?? 'pgcdc';
  if (!/^[a-z][a-z0-9]{1,9}$/.test(prefix)) fail('prefix', '2-10 lower-case letters and digits, starting with a letter', prefix);
  const partitions = config.getNumber('partitions') ?? 4;
  if (!Number.isInteger(partitions) || partitions < 1 || partitions > 32) fail('partitions', 'an integer 1-32 (Event Hubs Standard)', partitions);
  const adxMode = config.get('adxMode') ?? 'none';
  if (!isAdxMode(adxMode)) fail('adxMode', 'none, create or existing', adxMode);
  const adxDatabase = config.get('adxDatabase') ?? 'cdc';
  const adx: InfraConfig['adx'] =
    adxMode === 'none'
      ? { mode: 'none' }
      : adxMode === 'create'
        ? { mode: 'create', sku: config.get('adxSku') ?? 'Dev(No SLA)_Standard_E2a_v4', database: adxDatabase }
        : { mode: 'existing', clusterId: existingClusterId(config.get('adxClusterId')), database: config.require('adxDatabase') };
  const registryId = config.get('readerRegistryId');
  if (registryId !== undefined && !/\/providers\/Microsoft\.ContainerRegistry\/registries\/[^/]+$/i.test(registryId))
    fail('readerRegistryId', 'the resource id of an Azure Container Registry (az acr show -n <name> --query id -o tsv)', registryId);
  const email = config.get('alertEmail');
  const postgresAuth = config.get('postgresAuth') ?? 'password';
  if (postgresAuth !== 'password' && postgresAuth !== 'entra') fail('postgresAuth', "entra (the reader's managed identity) or password", postgresAuth);
  if (postgresAuth === 'entra' && config.get('postgresPassword') !== undefined)
    fail('postgresPassword', 'unset with postgresAuth=entra (no password is stored; pulumi config rm postgresPassword)', '(set)');
  return {
    prefix,
    topic: config.get('topic') ?? 'cdc-events',
    partitions,
    postgres: {
      host: config.require('postgresHost'),
      port: config.getNumber('postgresPort') ?? 5432,
      database: config.get('postgresDatabase') ?? 'postgres',
      user: config.get('postgresUser') ?? 'cdc_reader',
      auth: postgresAuth,
      password: postgresAuth === 'entra' ? undefined : config.requireSecret('postgresPassword'),
      tables: config.require('cdcTables'),
    },
    reader: { image: config.require('readerImage'), registryId, cpu: config.getNumber('readerCpu') ?? 0.5, memory: config.get('readerMemory') ?? '1Gi' },
    elasticsearch: { url: config.require('elasticsearchUrl'), apiKey: config.requireSecret('elasticsearchApiKey') },
    adx,
    functions: {
      maximumInstanceCount: config.getNumber('functionsMaxInstances') ?? 40,
      instanceMemoryMB: config.getNumber('functionsInstanceMemoryMB') ?? 2048,
    },
    alerts: {
      slotLagBytes: config.getNumber('alertSlotLagBytes') ?? 1024 ** 3,
      slotLagSeconds: config.getNumber('alertSlotLagSeconds') ?? 300,
      sinkStallMinutes: config.getNumber('alertSinkStallMinutes') ?? 15,
      email: email === undefined || email === '' ? undefined : email,
    },
  };
}

function isAdxMode(mode: string): mode is AdxMode {
  return mode === 'none' || mode === 'create' || mode === 'existing';
}

function existingClusterId(id: string | undefined): string {
  if (id === undefined || !/^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Kusto\/clusters\/[^/]+$/i.test(id))
    fail('adxClusterId', 'the resource id of the ADX cluster (az kusto cluster show -n <name> -g <group> --query id -o tsv), with adxMode=existing', id);
  return id;
}

/** Resource group and name of a resource id. */
export function parseResourceId(id: string): { subscriptionId: string; resourceGroup: string; name: string } {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/.+\/([^/]+)$/i.exec(id);
  if (!m) throw new Error(`not a resource id: ${id}`);
  return { subscriptionId: m[1]!, resourceGroup: m[2]!, name: m[3]! };
}
