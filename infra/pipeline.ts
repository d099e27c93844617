/**
 * The whole pipeline on Azure: Event Hubs (the hub, one consumer group per sink), one storage account
 * (the Functions host's containers, the sinks' dead letters, the reader's claim check), the Functions
 * app on Flex Consumption, Application Insights on Log Analytics, the reader on Container Apps, Key
 * Vault for the two secrets, optionally ADX, and the workbook and alerts (monitoring.ts). Identities
 * get only the roles they need (roles.ts), each on the narrowest scope that works.
 */
import * as app from '@pulumi/azure-native/app/index.js';
import * as applicationinsights from '@pulumi/azure-native/applicationinsights/index.js';
import * as authorization from '@pulumi/azure-native/authorization/index.js';
import * as eventhub from '@pulumi/azure-native/eventhub/index.js';
import * as keyvault from '@pulumi/azure-native/keyvault/index.js';
import * as kusto from '@pulumi/azure-native/kusto/index.js';
import * as managedidentity from '@pulumi/azure-native/managedidentity/index.js';
import * as monitor from '@pulumi/azure-native/monitor/index.js';
import * as operationalinsights from '@pulumi/azure-native/operationalinsights/index.js';
import * as resources from '@pulumi/azure-native/resources/index.js';
import * as storage from '@pulumi/azure-native/storage/index.js';
import * as web from '@pulumi/azure-native/web/index.js';
import * as pulumi from '@pulumi/pulumi';
import { SINK_NAMES } from '../src/shared/sinks/names.js';
import { parseResourceId, type InfraConfig } from './config.js';
import { createMonitoring } from './monitoring.js';
import { assignRole } from './roles.js';
import { CONTAINERS, functionAppSettings, READER_HEALTH_PORT, readerEnv } from './settings.js';

/** The Functions runtime: Node 22 on Flex Consumption (set in functionAppConfig, not as app settings there). */
export const FUNCTIONS_RUNTIME = { name: 'node', version: '22' } as const;

export interface Pipeline {
  resourceGroupName: pulumi.Output<string>;
  functionAppName: pulumi.Output<string>;
  functionAppHostName: pulumi.Output<string>;
  eventHubsNamespace: pulumi.Output<string>;
  storageAccountName: pulumi.Output<string>;
  readerAppName: pulumi.Output<string>;
  /** The reader's user-assigned identity: its PostgreSQL role name with postgresAuth=entra (README, Deploy step 2). */
  readerIdentityName: pulumi.Output<string>;
  appInsightsName: pulumi.Output<string>;
  adxClusterUrl: pulumi.Output<string> | undefined;
  adxDatabase: pulumi.Output<string> | undefined;
}

export function createPipeline(cfg: InfraConfig, stack: string): Pipeline {
  const client = authorization.getClientConfigOutput();
  const subscriptionId = client.subscriptionId;
  const p = cfg.prefix;

  const group = new resources.ResourceGroup(`${p}-rg`);
  const rg = group.name;
  const location = group.location;

  // Telemetry: Application Insights on a Log Analytics workspace.
  const workspace = new operationalinsights.Workspace(`${p}-logs`, { resourceGroupName: rg, location, sku: { name: 'PerGB2018' }, retentionInDays: 30 });
  const insights = new applicationinsights.Component(`${p}-insights`, {
    resourceGroupName: rg,
    location,
    kind: 'web',
    applicationType: 'web',
    ingestionMode: 'LogAnalytics',
    workspaceResourceId: workspace.id,
  });

  // Event Hubs: Standard (the Kafka endpoint), no SAS keys at all (disableLocalAuth: identities only).
  const namespace = new eventhub.Namespace(`${p}-eh`, {
    resourceGroupName: rg,
    location,
    sku: { name: 'Standard', tier: 'Standard', capacity: 1 },
    kafkaEnabled: true,
    disableLocalAuth: true,
    minimumTlsVersion: '1.2',
  });
  const hub = new eventhub.EventHub('hub', {
    resourceGroupName: rg,
    namespaceName: namespace.name,
    eventHubName: cfg.topic,
    partitionCount: cfg.partitions,
    messageRetentionInDays: 7,
  });
  const consumerGroups: Record<string, eventhub.ConsumerGroup> = {};
  for (const sink of SINK_NAMES) {
    consumerGroups[sink.consumerGroupSetting] = new eventhub.ConsumerGroup(`cg-${sink.name}`, {
      resourceGroupName: rg,
      namespaceName: namespace.name,
      eventHubName: hub.name,
      consumerGroupName: sink.defaultConsumerGroup,
      userMetadata: `the ${sink.name} sink (${sink.consumerGroupSetting})`,
    });
  }
  const eventHubsHost = pulumi.interpolate`${namespace.name}.servicebus.windows.net`;

  // Storage: no shared keys (identities only), one container per use.
  const account = new storage.StorageAccount(`${p}store`, {
    resourceGroupName: rg,
    location,
    kind: 'StorageV2',
    sku: { name: 'Standard_LRS' },
    allowSharedKeyAccess: false,
    allowBlobPublicAccess: false,
    minimumTlsVersion: 'TLS1_2',
  });
  const containers = Object.fromEntries(
    Object.entries(CONTAINERS).map(([key, containerName]) => [
      key,
      new storage.BlobContainer(`container-${containerName}`, { resourceGroupName: rg, accountName: account.name, containerName, publicAccess: 'None' }),
    ]),
  ) as Record<keyof typeof CONTAINERS, storage.BlobContainer>;
  const blobEndpoint = pulumi.interpolate`https://${account.name}.blob.core.windows.net`;

  // Key Vault (RBAC): the PostgreSQL password and the Elasticsearch API key, read through references.
  const vault = new keyvault.Vault(`${p}kv`, {
    resourceGroupName: rg,
    location,
    properties: {
      tenantId: client.tenantId,
      sku: { family: 'A', name: 'standard' },
      enableRbacAuthorization: true,
      enableSoftDelete: true,
      softDeleteRetentionInDays: 7,
    },
  });
  // With postgresAuth=entra there is no password: the reader signs in with its managed identity.
  const pgPassword =
    cfg.postgres.password === undefined
      ? undefined
      : new keyvault.Secret('postgres-password', {
          resourceGroupName: rg,
          vaultName: vault.name,
          secretName: 'postgres-password',
          properties: { value: cfg.postgres.password },
        });
  const esApiKey = new keyvault.Secret('elasticsearch-api-key', {
    resourceGroupName: rg,
    vaultName: vault.name,
    secretName: 'elasticsearch-api-key',
    properties: { value: cfg.elasticsearch.apiKey },
  });
  const secretUri = (s: keyvault.Secret) => s.properties.apply((x) => x.secretUri ?? '');

  // ADX: a new cluster and database, an existing one, or none.
  let adx:
    { clusterName: pulumi.Input<string>; resourceGroupName: pulumi.Input<string>; uri: pulumi.Output<string>; database: pulumi.Output<string> } | undefined;
  if (cfg.adx.mode === 'create') {
    const cluster = new kusto.Cluster(`${p}adx`, {
      resourceGroupName: rg,
      location,
      sku: { name: cfg.adx.sku, tier: cfg.adx.sku.startsWith('Dev(') ? 'Basic' : 'Standard', ...(cfg.adx.sku.startsWith('Dev(') ? { capacity: 1 } : {}) },
    });
    const database = new kusto.ReadWriteDatabase('adx-database', {
      resourceGroupName: rg,
      clusterName: cluster.name,
      databaseName: cfg.adx.database,
      kind: 'ReadWrite',
      location,
      softDeletePeriod: 'P365D',
      hotCachePeriod: 'P31D',
    });
    adx = { clusterName: cluster.name, resourceGroupName: rg, uri: cluster.uri, database: database.name.apply((n) => n.split('/').pop() ?? n) };
  } else if (cfg.adx.mode === 'existing') {
    const id = parseResourceId(cfg.adx.clusterId);
    const existing = kusto.getClusterOutput({ clusterName: id.name, resourceGroupName: id.resourceGroup });
    adx = { clusterName: id.name, resourceGroupName: id.resourceGroup, uri: existing.uri, database: pulumi.output(cfg.adx.database) };
  }

  // The Functions app: Flex Consumption, Node 22, system-assigned identity, identity-based connections.
  const plan = new web.AppServicePlan(`${p}-plan`, {
    resourceGroupName: rg,
    location,
    kind: 'functionapp',
    reserved: true,
    sku: { name: 'FC1', tier: 'FlexConsumption' },
  });
  const settings = functionAppSettings({
    storageAccountName: account.name,
    blobEndpoint,
    eventHubsHost,
    topic: hub.name,
    consumerGroups: Object.fromEntries(Object.entries(consumerGroups).map(([setting, g]) => [setting, g.name])),
    appInsightsConnectionString: insights.connectionString,
    elasticsearch: { url: cfg.elasticsearch.url, apiKeySecretUri: secretUri(esApiKey) },
    adx: adx === undefined ? undefined : { clusterUri: adx.uri, database: adx.database },
    postgres: pgPassword === undefined ? undefined : { ...cfg.postgres, passwordSecretUri: secretUri(pgPassword) },
  });
  const functionApp = new web.WebApp(`${p}-func`, {
    resourceGroupName: rg,
    location,
    kind: 'functionapp,linux',
    serverFarmId: plan.id,
    httpsOnly: true,
    identity: { type: 'SystemAssigned' },
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer',
          value: pulumi.interpolate`${blobEndpoint}/${CONTAINERS.deployment}`,
          authentication: { type: 'SystemAssignedIdentity' },
        },
      },
      runtime: FUNCTIONS_RUNTIME,
      scaleAndConcurrency: { maximumInstanceCount: cfg.functions.maximumInstanceCount, instanceMemoryMB: cfg.functions.instanceMemoryMB },
    },
    siteConfig: {
      minTlsVersion: '1.2',
      ftpsState: 'Disabled',
      appSettings: Object.entries(settings).map(([name, value]) => ({ name, value })),
    },
  });
  const appPrincipal = functionApp.identity.apply((i) => i?.principalId ?? '');
  const appRole = (name: string, role: Parameters<typeof assignRole>[1]['role'], scope: pulumi.Input<string>) =>
    assignRole(`app-${name}`, { subscriptionId, principalId: appPrincipal, role, scope });
  appRole('eventhubs-receiver', 'eventHubsDataReceiver', hub.id);
  for (const key of ['hostLeases', 'hostCheckpoints', 'hostSecrets', 'deployment', 'sinkDeadLetters'] as const)
    appRole(`blob-owner-${CONTAINERS[key]}`, 'storageBlobDataOwner', containers[key].id);
  appRole('blob-reader-claim-check', 'storageBlobDataReader', containers.claimCheck.id);
  if (pgPassword !== undefined) appRole('kv-postgres-password', 'keyVaultSecretsUser', pgPassword.id);
  appRole('kv-elasticsearch-api-key', 'keyVaultSecretsUser', esApiKey.id);
  if (adx !== undefined) {
    for (const role of ['Ingestor', 'Viewer'] as const) {
      new kusto.DatabasePrincipalAssignment(`app-adx-${role.toLowerCase()}`, {
        resourceGroupName: adx.resourceGroupName,
        clusterName: adx.clusterName,
        databaseName: adx.database,
        principalAssignmentName: `${stack}-functions-${role.toLowerCase()}`,
        principalId: appPrincipal,
        principalType: 'App',
        role,
        tenantId: client.tenantId,
      });
    }
  }

  // The reader: one replica on Container Apps with a user-assigned identity (its roles exist before it starts).
  const readerIdentity = new managedidentity.UserAssignedIdentity(`${p}-reader-id`, { resourceGroupName: rg, location });
  const readerRole = (name: string, role: Parameters<typeof assignRole>[1]['role'], scope: pulumi.Input<string>) =>
    assignRole(`reader-${name}`, { subscriptionId, principalId: readerIdentity.principalId, role, scope });
  const readerRoles = [
    readerRole('eventhubs-sender', 'eventHubsDataSender', hub.id),
    readerRole('blob-contributor-claim-check', 'storageBlobDataContributor', containers.claimCheck.id),
  ];
  if (pgPassword !== undefined) readerRoles.push(readerRole('kv-postgres-password', 'keyVaultSecretsUser', pgPassword.id));
  let registry: { server: string; identity: pulumi.Output<string> } | undefined;
  if (cfg.reader.registryId !== undefined) {
    readerRoles.push(readerRole('acr-pull', 'acrPull', cfg.reader.registryId));
    registry = { server: `${parseResourceId(cfg.reader.registryId).name.toLowerCase()}.azurecr.io`, identity: readerIdentity.id };
  }
  const environment = new app.ManagedEnvironment(`${p}-env`, { resourceGroupName: rg, location, appLogsConfiguration: { destination: 'azure-monitor' } });
  new monitor.DiagnosticSetting('env-logs', {
    resourceUri: environment.id,
    workspaceId: workspace.id,
    logs: [
      { category: 'ContainerAppConsoleLogs', enabled: true },
      { category: 'ContainerAppSystemLogs', enabled: true },
    ],
  });
  const passwordSecretName = 'postgres-password';
  const probe = (type: 'Startup' | 'Liveness' | 'Readiness', path: string, extra: Record<string, number>) => ({
    type,
    httpGet: { path, port: READER_HEALTH_PORT },
    ...extra,
  });
  const reader = new app.ContainerApp(
    `${p}-reader`,
    {
      resourceGroupName: rg,
      location,
      managedEnvironmentId: environment.id,
      identity: { type: 'UserAssigned', userAssignedIdentities: [readerIdentity.id] },
      configuration: {
        activeRevisionsMode: 'Single',
        secrets: pgPassword === undefined ? [] : [{ name: passwordSecretName, keyVaultUrl: secretUri(pgPassword), identity: readerIdentity.id }],
        ...(registry ? { registries: [registry] } : {}),
      },
      template: {
        containers: [
          {
            name: 'reader',
            image: cfg.reader.image,
            resources: { cpu: cfg.reader.cpu, memory: cfg.reader.memory },
            env: readerEnv({
              identityClientId: readerIdentity.clientId,
              eventHubsHost,
              topic: hub.name,
              blobEndpoint,
              appInsightsConnectionString: insights.connectionString,
              postgres: { ...cfg.postgres, user: cfg.postgres.auth === 'entra' ? readerIdentity.name : cfg.postgres.user },
              passwordSecretName: pgPassword === undefined ? undefined : passwordSecretName,
            }),
            probes: [
              // A snapshot's start can take a while: up to 5 minutes before liveness counts.
              probe('Startup', '/healthz', { periodSeconds: 10, failureThreshold: 30 }),
              probe('Liveness', '/healthz', { periodSeconds: 15, failureThreshold: 4 }),
              probe('Readiness', '/readyz', { periodSeconds: 10, failureThreshold: 3 }),
            ],
          },
        ],
        // One slot, one reader: never more than one replica, never none.
        scale: { minReplicas: 1, maxReplicas: 1 },
      },
    },
    { dependsOn: readerRoles },
  );

  createMonitoring({
    resourceGroupName: rg,
    location,
    appInsightsId: insights.id,
    thresholds: cfg.alerts,
    email: cfg.alerts.email,
    identity: `${stack}/${p}`,
  });

  return {
    resourceGroupName: rg,
    functionAppName: functionApp.name,
    functionAppHostName: functionApp.defaultHostName,
    eventHubsNamespace: eventHubsHost,
    storageAccountName: account.name,
    readerAppName: reader.name,
    readerIdentityName: readerIdentity.name,
    appInsightsName: insights.name,
    adxClusterUrl: adx?.uri,
    adxDatabase: adx?.database,
  };
}
