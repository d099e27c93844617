/**
 * Serving the status: GET /status (the JSON model) and GET / (the page), as a request handler any
 * HTTP server can mount (the worker's probe server, the `npm start` launcher's) or as a server of
 * its own (`startStatusServer`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Env } from '../core/env.js';
import { collectStatus, statusSettingsFromEnv, statusSourcesFromEnv, type SourceOverrides, type StatusSources } from './collect.js';
import { StatusMonitor } from './monitor.js';
import { renderStatusPage } from './page.js';

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    // The page needs nothing from anywhere: no script at all, styles inline, no fetches.
    'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

/** Handles GET /status and GET / (also /status.html); returns false for every other request. */
export function statusRequestHandler(monitor: StatusMonitor): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    if (path !== '/status' && path !== '/' && path !== '/status.html') return false;
    monitor.current().then(
      (status) =>
        path === '/status'
          ? send(res, 200, 'application/json', JSON.stringify(status))
          : send(res, 200, 'text/html; charset=utf-8', renderStatusPage(status, monitor.samples())),
      (error: unknown) => send(res, 500, 'application/json', JSON.stringify({ error: error instanceof Error ? error.message : String(error) })),
    );
    return true;
  };
}

/** A server with the status alone (404 for anything else), on `port` (0 = a free one), loopback unless `host` says otherwise. */
export function startStatusServer(port: number, monitor: StatusMonitor, host = '127.0.0.1'): Promise<Server> {
  const handle = statusRequestHandler(monitor);
  const server = createServer((req, res) => {
    if (!handle(req, res)) send(res, 404, 'application/json', JSON.stringify({ status: 'not found' }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

export interface EnvStatus {
  sources: StatusSources;
  monitor: StatusMonitor;
  /** Stops sampling and closes the sources' clients. */
  close(): Promise<void>;
}

/** The sources the settings configure, and a monitor over them (not yet sampling: call `monitor.start()`). */
export function statusFromEnv(env: Env, overrides: SourceOverrides = {}): EnvStatus {
  const settings = statusSettingsFromEnv(env);
  const sources = statusSourcesFromEnv(env, overrides);
  const monitor = new StatusMonitor(() => collectStatus(sources, { timeoutMs: settings.timeoutMs }), { sampleIntervalMs: settings.sampleIntervalMs });
  return {
    sources,
    monitor,
    close: async () => {
      await monitor.stop();
      await sources.close();
    },
  };
}
