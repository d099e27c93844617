/**
 * The `status` HTTP function: the pipeline's status as JSON (README "Status"), computed on each call
 * from the real sources. Key auth (`authLevel: 'function'`) is the host's: a request without a
 * function or host key never reaches the handler. The sources' clients are built on the first call
 * and kept for the host instance's life.
 */
import type { HttpFunctionOptions, HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import type { Env } from '../../shared/core/env.js';
import { lazy } from '../../shared/core/lazy.js';
import { collectStatus, statusSettingsFromEnv, statusSourcesFromEnv, type SourceOverrides } from '../../shared/status/collect.js';
import { statusLine } from '../../shared/status/summary.js';

export function statusHandler(env: Env = process.env, overrides: SourceOverrides = {}) {
  const sources = lazy(() => statusSourcesFromEnv(env, overrides));
  let built = false;
  const handler = async (_request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    const { timeoutMs } = statusSettingsFromEnv(env);
    built = true;
    const status = await collectStatus(await sources(), { timeoutMs });
    context.log(`status: ${statusLine(status)}`);
    return { status: 200, jsonBody: status, headers: { 'cache-control': 'no-store' } };
  };
  // The host never stops a handler; tests close the clients the first call built.
  return Object.assign(handler, { close: async () => (built ? (await sources()).close() : undefined) });
}

export function statusFunctionOptions(env: Env = process.env): HttpFunctionOptions {
  return { methods: ['GET'], authLevel: 'function', route: 'status', handler: statusHandler(env) };
}
