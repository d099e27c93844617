/**
 * Runs the Pulumi program in-process against Pulumi's mocks (`pulumi.runtime.setMocks`): no CLI, no
 * Azure. Each resource's inputs are recorded as the engine would receive them (outputs resolved), and
 * the mock answers with the outputs Azure would compute (ids, names, the identity's principal id), so
 * the tests (test/infra) can check what would be deployed. Lives in infra/ so that it and the program
 * share the one copy of @pulumi/pulumi, in infra/node_modules.
 */
import * as pulumi from '@pulumi/pulumi';

export interface RecordedResource {
  type: string;
  name: string;
  id: string;
  inputs: Record<string, unknown>;
  state: Record<string, unknown>;
}

export const MOCK_SUBSCRIPTION = '00000000-0000-0000-0000-00000000aaaa';
export const MOCK_TENANT = '00000000-0000-0000-0000-00000000bbbb';
export const MOCK_APP_PRINCIPAL = '11111111-1111-1111-1111-111111111111';
export const MOCK_READER_PRINCIPAL = '22222222-2222-2222-2222-222222222222';
export const MOCK_READER_CLIENT = '33333333-3333-3333-3333-333333333333';

const str = (v: unknown, fallback: string): string => (typeof v === 'string' && v !== '' ? v : fallback);

/** What Azure would name and compute for a resource of `type` with `inputs`. */
function answer(type: string, name: string, inputs: Record<string, unknown>): { id: string; state: Record<string, unknown> } {
  const rg = str(inputs.resourceGroupName, 'rg');
  const base = `/subscriptions/${MOCK_SUBSCRIPTION}/resourceGroups/${rg}/providers`;
  const [, module = '', kind = ''] = type.split(':');
  switch (`${module}:${kind}`) {
    case 'resources:ResourceGroup':
      return { id: `/subscriptions/${MOCK_SUBSCRIPTION}/resourceGroups/${name}`, state: { ...inputs, name, location: 'westeurope' } };
    case 'eventhub:Namespace':
      return { id: `${base}/Microsoft.EventHub/namespaces/${name}`, state: { ...inputs, name } };
    case 'eventhub:EventHub': {
      const hub = str(inputs.eventHubName, name);
      return { id: `${base}/Microsoft.EventHub/namespaces/${str(inputs.namespaceName, '?')}/eventhubs/${hub}`, state: { ...inputs, name: hub } };
    }
    case 'eventhub:ConsumerGroup': {
      const group = str(inputs.consumerGroupName, name);
      return {
        id: `${base}/Microsoft.EventHub/namespaces/${str(inputs.namespaceName, '?')}/eventhubs/${str(inputs.eventHubName, '?')}/consumergroups/${group}`,
        state: { ...inputs, name: group },
      };
    }
    case 'storage:StorageAccount':
      return { id: `${base}/Microsoft.Storage/storageAccounts/${name}`, state: { ...inputs, name } };
    case 'storage:BlobContainer': {
      const c = str(inputs.containerName, name);
      return {
        id: `${base}/Microsoft.Storage/storageAccounts/${str(inputs.accountName, '?')}/blobServices/default/containers/${c}`,
        state: { ...inputs, name: c },
      };
    }
    case 'keyvault:Vault':
      return { id: `${base}/Microsoft.KeyVault/vaults/${name}`, state: { ...inputs, name } };
    case 'keyvault:Secret': {
      const vault = str(inputs.vaultName, '?');
      const secret = str(inputs.secretName, name);
      // Azure never returns the value; `properties` (a secret input) is replaced, not merged.
      return {
        id: `${base}/Microsoft.KeyVault/vaults/${vault}/secrets/${secret}`,
        state: { ...inputs, name: secret, properties: { secretUri: `https://${vault}.vault.azure.net/secrets/${secret}` } },
      };
    }
    case 'web:WebApp':
      return {
        id: `${base}/Microsoft.Web/sites/${name}`,
        state: {
          ...inputs,
          name,
          defaultHostName: `${name}.azurewebsites.net`,
          identity: { type: 'SystemAssigned', principalId: MOCK_APP_PRINCIPAL, tenantId: MOCK_TENANT },
        },
      };
    case 'managedidentity:UserAssignedIdentity':
      return {
        id: `${base}/Microsoft.ManagedIdentity/userAssignedIdentities/${name}`,
        state: { ...inputs, name, principalId: MOCK_READER_PRINCIPAL, clientId: MOCK_READER_CLIENT, tenantId: MOCK_TENANT },
      };
    case 'applicationinsights:Component':
      return {
        id: `${base}/Microsoft.Insights/components/${name}`,
        state: {
          ...inputs,
          name,
          connectionString: 'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/',
        },
      };
    case 'kusto:Cluster':
      return { id: `${base}/Microsoft.Kusto/clusters/${name}`, state: { ...inputs, name, uri: `https://${name}.westeurope.kusto.windows.net` } };
    case 'kusto:ReadWriteDatabase': {
      const db = str(inputs.databaseName, name);
      // ARM names a database `<cluster>/<database>`.
      return {
        id: `${base}/Microsoft.Kusto/clusters/${str(inputs.clusterName, '?')}/databases/${db}`,
        state: { ...inputs, name: `${str(inputs.clusterName, '?')}/${db}` },
      };
    }
    default:
      return { id: `${base}/${type}/${name}`, state: { ...inputs, name } };
  }
}

/** Resources the program registered, and what the mocks answered. */
export interface MockRun<T> {
  result: T;
  resources: RecordedResource[];
}

/** Runs `program` against the mocks and returns every resource it registered, once all are registered. */
export async function runWithMocks<T>(program: () => T, options: { stack?: string; preview?: boolean } = {}): Promise<MockRun<T>> {
  const resources: RecordedResource[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        const inputs = args.inputs as Record<string, unknown>;
        const { id, state: raw } = answer(args.type, args.name, inputs);
        // The SDK refuses undefined values in the state it deserializes: drop them, as JSON does.
        const state = JSON.parse(JSON.stringify(raw)) as Record<string, unknown>;
        resources.push({ type: args.type, name: args.name, id, inputs, state });
        return { id, state };
      },
      call(args) {
        if (args.token === 'azure-native:authorization:getClientConfig')
          return { subscriptionId: MOCK_SUBSCRIPTION, tenantId: MOCK_TENANT, clientId: 'deployer-client', objectId: 'deployer-object' };
        if (args.token === 'azure-native:kusto:getCluster') {
          const name = str((args.inputs as Record<string, unknown>).clusterName, 'existing');
          return { name, uri: `https://${name}.northeurope.kusto.windows.net` };
        }
        throw new Error(`the mocks do not answer ${args.token}`);
      },
    },
    'pg-cdc',
    options.stack ?? 'test',
    options.preview ?? false,
  );
  const result = program();
  // Waits for every outstanding registration (each `apply` that registers more resources included).
  await pulumi.runtime.disconnect();
  return { result, resources };
}

/** An output's value (the mocks resolve every output). */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((v) => resolve(v)));
}

/** A secret config value, as `pulumi.Config.requireSecret` gives it. */
export function secretValue(value: string): pulumi.Output<string> {
  return pulumi.secret(value);
}

/** Runs `readConfig` on the given stack config (`key` without the project prefix). */
export function withConfig<T>(values: Record<string, string>, read: () => T): T {
  const key = (k: string) => `${pulumi.getProject()}:${k}`;
  pulumi.runtime.setAllConfig(
    Object.fromEntries(Object.entries(values).map(([k, v]) => [key(k), v])),
    Object.keys(values)
      .filter((k) => /password|apikey/i.test(k))
      .map(key),
  );
  return read();
}
