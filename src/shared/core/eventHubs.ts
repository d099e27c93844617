/**
 * The Functions host's Event Hubs connection, as its app settings name it: read by the triggers'
 * registration (src/functions/host) and by the status of the hub (src/shared/status), which must
 * find the same namespace the host's checkpoints are named after.
 */
import type { Env } from './env.js';

/** Name of the connection setting prefix: `EventHubConnection` (connection string) or `EventHubConnection__fullyQualifiedNamespace` (identity). */
export const EVENT_HUB_CONNECTION = 'EventHubConnection';

/**
 * The Event Hubs namespace the triggers read from, as configured: `EventHubConnection__fullyQualifiedNamespace`
 * (identity-based connection), else the host of the `Endpoint` in the `EventHubConnection` connection
 * string. Never returns or logs the connection string itself (it holds the key).
 */
export function eventHubNamespace(env: Env): string | undefined {
  // Tolerates `sb://<ns>/` pasted in place of the bare host name.
  const fqns = env[`${EVENT_HUB_CONNECTION}__fullyQualifiedNamespace`]
    ?.trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/+$/, '');
  if (fqns) return fqns;
  const endpoint = env[EVENT_HUB_CONNECTION]?.split(';')
    .map((part) => part.trim())
    .find((part) => part.toLowerCase().startsWith('endpoint='))
    ?.slice('endpoint='.length);
  if (!endpoint) return undefined;
  try {
    return new URL(endpoint).hostname || undefined;
  } catch {
    return undefined;
  }
}
