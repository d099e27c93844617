/**
 * Built-in Azure role definitions the pipeline's identities get (ids from Microsoft's "Azure built-in
 * roles" list; the same in every tenant), and the one way this program assigns them.
 */
import * as authorization from '@pulumi/azure-native/authorization/index.js';
import * as pulumi from '@pulumi/pulumi';

export const ROLES = {
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde',
  eventHubsDataSender: '2b629674-e913-4c01-ae53-ef4638d8f975',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1',
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
  acrPull: '7f951dda-4ed3-4680-a7ca-43fe172d538d',
} as const;

export type RoleName = keyof typeof ROLES;

export function roleDefinitionId(subscriptionId: pulumi.Input<string>, role: RoleName): pulumi.Output<string> {
  return pulumi.interpolate`/subscriptions/${subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${ROLES[role]}`;
}

/** One role for one service principal (a managed identity) on one scope. */
export function assignRole(
  name: string,
  args: { subscriptionId: pulumi.Input<string>; principalId: pulumi.Input<string>; role: RoleName; scope: pulumi.Input<string> },
  opts?: pulumi.CustomResourceOptions,
): authorization.RoleAssignment {
  return new authorization.RoleAssignment(
    name,
    { principalId: args.principalId, principalType: 'ServicePrincipal', roleDefinitionId: roleDefinitionId(args.subscriptionId, args.role), scope: args.scope },
    opts,
  );
}
