/**
 * The one way a component reaches Azure Blob storage: a connection string (Azurite, account keys),
 * or an account URL with `DefaultAzureCredential` (managed identity in Azure, `az login` locally),
 * which is the one to prefer in production because no key is stored anywhere.
 */
import { DefaultAzureCredential } from '@azure/identity';
import { BlobServiceClient } from '@azure/storage-blob';

export interface BlobServiceSettings {
  connectionString?: string | undefined;
  accountUrl?: string | undefined;
}

/** The client for the first configured of connection string and account URL; undefined if neither is. */
export function blobServiceClient(settings: BlobServiceSettings): BlobServiceClient | undefined {
  if (settings.connectionString) return BlobServiceClient.fromConnectionString(settings.connectionString);
  if (settings.accountUrl) return new BlobServiceClient(settings.accountUrl, new DefaultAzureCredential());
  return undefined;
}
