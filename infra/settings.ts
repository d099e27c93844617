/**
 * What the deployed code is told: the Function App's app settings and the reader container's
 * environment. Every setting the code reads (derived from the code by test/infra/settings.test.ts) is
 * either set here or listed in a `*_LEFT_UNSET` table with the reason its default is right on Azure;
 * every name set here is one the code reads, or a host or library setting with its reason.
 */
import * as pulumi from '@pulumi/pulumi';
import { SINK_NAMES } from '../src/shared/sinks/names.js';

/** Blob containers of the storage account. */
export const CONTAINERS = {
  /** The reader's claim check for events too large for the hub (the reader's `DEADLETTER_CONTAINER`). */
  claimCheck: 'cdc-deadletter',
  /** Records the sinks refused (`SINK_DEADLETTER_CONTAINER`). */
  sinkDeadLetters: 'cdc-sink-deadletter',
  /** The Flex Consumption deployment package (`functionAppConfig.deployment.storage`). */
  deployment: 'app-package',
  /** The Functions host's own: leases and timer locks, Event Hubs checkpoints, function keys. */
  hostLeases: 'azure-webjobs-hosts',
  hostCheckpoints: 'azure-webjobs-eventhub',
  hostSecrets: 'azure-webjobs-secrets',
} as const;

/** The reader's health port: Container Apps probes `/healthz` and `/readyz` there. */
export const READER_HEALTH_PORT = 8080;

/** Function App settings that no code of ours reads: the Functions host's or the platform's. */
export const FUNCTIONS_HOST_SETTINGS: Readonly<Record<string, string>> = {
  APPLICATIONINSIGHTS_CONNECTION_STRING:
    "the Functions host's Application Insights (requests, traces, exceptions of every invocation); Microsoft documents the connection string as not a secret",
  'AzureWebJobs.adxSink.Disabled':
    'set only without ADX: the host then does not run the ADX sink function (it would retry forever for want of ADX_CLUSTER_URL)',
};

/** Settings the Functions code reads that this program leaves unset, and why the default fits Azure. */
export const FUNCTIONS_LEFT_UNSET: Readonly<Record<string, string>> = {
  CDC_DEBEZIUM_UNAVAILABLE_VALUE_PLACEHOLDER:
    "Debezium's default placeholder, for events from a Debezium connector (this program's reader writes the native format)",
  PG_AUTH:
    "its default, password: the status function reads the Key Vault password (with postgresAuth=entra it has no PostgreSQL settings; the app's identity has no PostgreSQL role)",
  ...same(
    ['OTEL_SERVICE_NAME', 'WEBSITE_SITE_NAME'],
    "cloud_RoleName: the platform sets WEBSITE_SITE_NAME to the app's name, which the telemetry uses when OTEL_SERVICE_NAME is unset",
  ),
  OTEL_NODE_RESOURCE_DETECTORS: "the app's default list (without the VM metadata detector, which has nothing to find on Flex Consumption)",
  ...same(
    [
      'EventHubConnection',
      'AzureWebJobsStorage',
      'AZURE_STORAGE_CONNECTION_STRING',
      'SINK_DEADLETTER_CONNECTION_STRING',
      'READER_DEADLETTER_CONNECTION_STRING',
    ],
    'connection strings hold keys: identity-based connections are used instead',
  ),
  ...same(['EVENTHUBS_CONNECTION_STRING', 'KAFKA_SASL_PASSWORD'], 'keys: the Functions host reads the hub through its identity-based connection'),
  ...same(
    [
      'KAFKA_BROKERS',
      'KAFKA_SECURITY_PROTOCOL',
      'KAFKA_SASL_MECHANISM',
      'KAFKA_SASL_USERNAME',
      'KAFKA_OAUTH_SCOPE',
      'KAFKA_CLIENT_ID',
      'KAFKA_REQUEST_TIMEOUT_MS',
      'KAFKA_METADATA_MAX_AGE_MS',
    ],
    "the status's Kafka mode (the worker's); in the Functions app the status reads the hub as the host does (STATUS_HUB=auto finds EventHubConnection__fullyQualifiedNamespace)",
  ),
  STATUS_HUB: 'auto picks eventhubs from EventHubConnection__fullyQualifiedNamespace',
  AzureWebJobsStorage__blobServiceUri: 'derived from AzureWebJobsStorage__accountName (public cloud)',
  ...same(['ELASTICSEARCH_USERNAME', 'ELASTICSEARCH_PASSWORD'], 'Elasticsearch is reached with an API key (elasticsearchApiKey, from Key Vault)'),
  ...same(
    ['ADX_CLIENT_ID', 'ADX_TENANT_ID', 'ADX_CLIENT_SECRET'],
    "ADX is reached with the app's system-assigned identity (ADX_AUTH's default, managed-identity)",
  ),
  ADX_AUTH: "its default, managed-identity, is the app's system-assigned identity",
  ADX_INGEST_URL: 'derived from ADX_CLUSTER_URL (ingest-<cluster>)',
  ADX_INGESTION_MODE: "queued, the default, is ADX's production path",
  ADX_TABLE_ROUTES: 'deprecated; the routes are CDC_ROUTES',
  ...same(
    ['ADX_BATCHING_TIMESPAN', 'ADX_BATCHING_MAX_ITEMS', 'ADX_BATCHING_MAX_MB', 'ADX_FOLDER', 'ADX_TRUNCATES_TABLE'],
    'read by adx:setup, which the deploy command runs with the same defaults',
  ),
  ...same(
    ['CDC_ROUTES', 'CDC_UNWRAP_FIELDS'],
    "the demo tables' catalogue and metadata fields; set your own with az functionapp config appsettings set (docs/sinks.md)",
  ),
  ...same(['CDC_RETRY_MIN_INTERVAL_SECONDS', 'CDC_RETRY_MAX_INTERVAL_SECONDS'], 'the retry backoff defaults (5 s to 15 min)'),
  ...same(
    [
      'ELASTICSEARCH_REQUEST_TIMEOUT_MS',
      'ES_BULK_MAX_ATTEMPTS',
      'ES_BULK_BACKOFF_MS',
      'ES_NUMBER_OF_REPLICAS',
      'ES_CONTROL_INDEX',
      'ES_ENSURE_TEMPLATES',
      'ES_OLD_INDEX_GRACE_MINUTES',
      'HISTORY_INDEX',
    ],
    'Elasticsearch defaults, the same es:setup uses',
  ),
  ...same(
    [
      'ORDERS_GENERATOR_ENABLED',
      'ORDERS_GENERATOR_SCHEDULE',
      'ORDERS_PER_RUN',
      'ORDERS_GENERATOR_WORKLOAD',
      'ORDERS_GENERATOR_MIX',
      'ORDERS_TABLE',
      'ORDERS_HOLDING_TABLE',
      'ORDERS_PG_CONNECTION_STRING',
    ],
    'the demo change generator stays off in a deployment (ORDERS_GENERATOR_ENABLED defaults to false)',
  ),
  ...same(
    ['CDC_SLOT', 'CDC_PUBLICATION', 'CDC_STATE_SCHEMA'],
    "the status reads the reader's slot, publication and state schema, which keep their defaults here",
  ),
  READER_METRICS_URL: "the reader has no ingress (it serves nobody); the status's reader part is off, its figures are in Application Insights",
  ...same(
    ['STATUS_ENABLED', 'STATUS_SOURCE_TIMEOUT_MS', 'STATUS_SAMPLE_INTERVAL_MS', 'HEALTH_PORT'],
    "the status function's defaults (STATUS_ENABLED and HEALTH_PORT are the worker's)",
  ),
  WORKER_SINKS: "the status's list of sinks: by default every sink whose store is configured, as the Functions host runs them",
};

/** Left unset as well when the stack has no ADX (`adxMode=none`): the ADX sink function is disabled. */
export const FUNCTIONS_LEFT_UNSET_WITHOUT_ADX: Readonly<Record<string, string>> = same(
  ['ADX_CLUSTER_URL', 'ADX_DATABASE'],
  'no ADX in this stack: AzureWebJobs.adxSink.Disabled turns the ADX sink function off',
);

/** Reader environment variables no code of ours reads. */
export const READER_LIBRARY_SETTINGS: Readonly<Record<string, string>> = {
  AZURE_CLIENT_ID: "@azure/identity's DefaultAzureCredential: which user-assigned identity is the reader's (Event Hubs OAUTHBEARER, Blob claim check)",
};

/** Settings the reader reads that this program leaves unset, and why the default fits Azure. */
export const READER_LEFT_UNSET: Readonly<Record<string, string>> = {
  PG_AUTH: 'set only with postgresAuth=entra; its default, password, reads PGPASSWORD from Key Vault',
  CDC_PUBLICATION_MODE: "tables, the default: the publication lists CDC_TABLES (FOR ALL TABLES would need a superuser, which Azure's admin is not)",
  CDC_PUBLICATION_REFRESH_MS: 'the default: the publication is checked every minute',
  ...same(
    ['EVENTHUBS_CONNECTION_STRING', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_USERNAME', 'DEADLETTER_CONNECTION_STRING', 'AZURE_STORAGE_CONNECTION_STRING'],
    'keys: the reader uses its managed identity',
  ),
  KAFKA_OAUTH_SCOPE: 'derived from the broker host (https://<namespace>.servicebus.windows.net/.default)',
  ...same(['KAFKA_CLIENT_ID', 'KAFKA_REQUEST_TIMEOUT_MS', 'KAFKA_METADATA_MAX_AGE_MS'], "the defaults are Microsoft's recommended Event Hubs settings"),
  KAFKA_MAX_MESSAGE_BYTES: "1000000, under Event Hubs' 1 MB limit; larger events go to the claim-check container",
  ...same(['CDC_SLOT', 'CDC_PUBLICATION', 'CDC_STATE_SCHEMA', 'CDC_SERVER_NAME'], 'the defaults (the status function assumes the same slot and publication)'),
  ...same(['CDC_SNAPSHOT_MODE', 'CDC_SNAPSHOT_CHUNK_ROWS'], 'an initial snapshot in resumable chunks, the default'),
  CDC_SNAPSHOT_PARALLELISM: "the default, the container's cores: one snapshot connection per core",
  CDC_SNAPSHOT_READER_THREADS:
    'the default, 0: the main thread reads and transcodes (two reader threads take the wide snapshot to 231–243 MB of RSS against the 200 MB bound)',
  CDC_SCHEMA_CHANGE_SNAPSHOT: 'auto, the default: a schema change that is not purely additive reconciles the existing rows with an incremental snapshot',
  ...same(
    ['CDC_EVENT_FORMAT', 'CDC_DEBEZIUM_SETTINGS', 'CDC_TOPIC_TEMPLATE'],
    'the native event on the one hub this program creates (a topic per table needs a hub per table)',
  ),
  ...same(
    ['CDC_MAX_INFLIGHT_BYTES', 'CDC_STATUS_INTERVAL_MS', 'CDC_HEARTBEAT_INTERVAL_MS'],
    'the defaults bound memory and keep an idle slot from pinning WAL',
  ),
  ...same(
    ['LOG_LEVEL', 'OTEL_METRIC_EXPORT_INTERVAL', 'OTEL_SERVICE_NAME'],
    'info logs, a metric export a minute, cloud_RoleName pg-cdc-reader (the workbook and alerts filter on it)',
  ),
};

function same(names: readonly string[], reason: string): Record<string, string> {
  return Object.fromEntries(names.map((n) => [n, reason]));
}

/** A Key Vault reference the App Service platform resolves with the app's identity. */
export function keyVaultReference(secretUri: pulumi.Input<string>): pulumi.Output<string> {
  return pulumi.interpolate`@Microsoft.KeyVault(SecretUri=${secretUri})`;
}

export interface FunctionSettingsInputs {
  storageAccountName: pulumi.Input<string>;
  blobEndpoint: pulumi.Input<string>;
  eventHubsHost: pulumi.Input<string>;
  topic: pulumi.Input<string>;
  /** Consumer group per sink setting (`ADX_CONSUMER_GROUP`, ...), as created on the hub. */
  consumerGroups: Readonly<Record<string, pulumi.Input<string>>>;
  appInsightsConnectionString: pulumi.Input<string>;
  elasticsearch: { url: string; apiKeySecretUri: pulumi.Input<string> };
  adx: { clusterUri: pulumi.Input<string>; database: pulumi.Input<string> } | undefined;
  /** Undefined with postgresAuth=entra: the status function then reports PostgreSQL as not configured (its own identity has no PostgreSQL role). */
  postgres: { host: string; port: number; database: string; user: string; passwordSecretUri: pulumi.Input<string> } | undefined;
}

export function functionAppSettings(i: FunctionSettingsInputs): Record<string, pulumi.Input<string>> {
  const settings: Record<string, pulumi.Input<string>> = {
    AzureWebJobsStorage__accountName: i.storageAccountName,
    EventHubConnection__fullyQualifiedNamespace: i.eventHubsHost,
    APPLICATIONINSIGHTS_CONNECTION_STRING: i.appInsightsConnectionString,
    CDC_TOPIC: i.topic,
    SINK_DEADLETTER_ACCOUNT_URL: i.blobEndpoint,
    SINK_DEADLETTER_CONTAINER: CONTAINERS.sinkDeadLetters,
    READER_DEADLETTER_ACCOUNT_URL: i.blobEndpoint,
    ELASTICSEARCH_URL: i.elasticsearch.url,
    ELASTICSEARCH_API_KEY: keyVaultReference(i.elasticsearch.apiKeySecretUri),
  };
  if (i.postgres !== undefined) {
    // The status function's slot part (lag, WAL retained): the same server and user as the reader.
    settings.PGHOST = i.postgres.host;
    settings.PGPORT = String(i.postgres.port);
    settings.PGDATABASE = i.postgres.database;
    settings.PGUSER = i.postgres.user;
    settings.PGSSLMODE = 'verify-full';
    settings.PGSSLROOTCERT = 'system';
    settings.PGPASSWORD = keyVaultReference(i.postgres.passwordSecretUri);
  }
  for (const sink of SINK_NAMES) {
    const group = i.consumerGroups[sink.consumerGroupSetting];
    if (group === undefined) throw new Error(`no consumer group for ${sink.name} (${sink.consumerGroupSetting})`);
    settings[sink.consumerGroupSetting] = group;
  }
  if (i.adx === undefined) settings['AzureWebJobs.adxSink.Disabled'] = 'true';
  else {
    settings.ADX_CLUSTER_URL = i.adx.clusterUri;
    settings.ADX_DATABASE = i.adx.database;
  }
  return settings;
}

export interface ReaderEnvInputs {
  identityClientId: pulumi.Input<string>;
  eventHubsHost: pulumi.Input<string>;
  topic: pulumi.Input<string>;
  blobEndpoint: pulumi.Input<string>;
  appInsightsConnectionString: pulumi.Input<string>;
  /** `user` is the reader identity's name with `auth: entra` (a managed identity's PostgreSQL role is named after it). */
  postgres: { host: string; port: number; database: string; user: pulumi.Input<string>; tables: string; auth: 'password' | 'entra' };
  /** Name of the Container Apps secret holding PGPASSWORD (a Key Vault reference); undefined with `auth: entra`. */
  passwordSecretName: string | undefined;
}

/** The reader container's environment: plain values, or `secretRef` to a Container Apps secret (itself a Key Vault reference). */
export function readerEnv(i: ReaderEnvInputs): { name: string; value?: pulumi.Input<string>; secretRef?: string }[] {
  return [
    { name: 'PGHOST', value: i.postgres.host },
    { name: 'PGPORT', value: String(i.postgres.port) },
    { name: 'PGDATABASE', value: i.postgres.database },
    { name: 'PGUSER', value: i.postgres.user },
    { name: 'PGSSLMODE', value: 'verify-full' },
    { name: 'PGSSLROOTCERT', value: 'system' },
    { name: 'CDC_TOPIC', value: i.topic },
    { name: 'KAFKA_BROKERS', value: pulumi.interpolate`${i.eventHubsHost}:9093` },
    { name: 'KAFKA_SECURITY_PROTOCOL', value: 'SASL_SSL' },
    { name: 'KAFKA_SASL_MECHANISM', value: 'OAUTHBEARER' },
    { name: 'DEADLETTER_ACCOUNT_URL', value: i.blobEndpoint },
    { name: 'DEADLETTER_CONTAINER', value: CONTAINERS.claimCheck },
    { name: 'HEALTH_PORT', value: String(READER_HEALTH_PORT) },
    { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: i.appInsightsConnectionString },
    { name: 'AZURE_CLIENT_ID', value: i.identityClientId },
    { name: 'CDC_TABLES', value: i.postgres.tables },
    // Entra: a token from the reader's managed identity (AZURE_CLIENT_ID) for every new connection.
    i.postgres.auth === 'entra' || i.passwordSecretName === undefined
      ? { name: 'PG_AUTH', value: 'entra' }
      : { name: 'PGPASSWORD', secretRef: i.passwordSecretName },
  ];
}
