/**
 * The probe server of every long-running component (the reader, the sink worker): /healthz
 * (process alive, not failed), /readyz (doing its work: for the reader streaming or snapshotting
 * with the broker reachable, for the worker every consumer joined), GET /metrics (JSON),
 * POST /metrics/reset (fresh latency window), and whatever `routes` a component adds.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

export interface HealthSource {
  live(): boolean;
  ready(): boolean;
  metrics(): Record<string, unknown>;
  resetMetrics?(): void;
}

/**
 * More routes a component serves on its probe port (the worker's status page): answers and returns
 * true for a request it takes, returns false for the others (the probes, then 404).
 */
export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

export function startHealthServer(port: number, source: HealthSource, routes?: RouteHandler): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (routes?.(req, res) === true) return;
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/healthz') reply(source.live() ? 200 : 503, { status: source.live() ? 'ok' : 'failed' });
    else if (path === '/readyz') reply(source.ready() ? 200 : 503, { status: source.ready() ? 'ready' : 'not ready' });
    else if (path === '/metrics' && req.method === 'GET') reply(200, source.metrics());
    else if (path === '/metrics/reset' && req.method === 'POST') {
      // Starts a fresh latency window (benchmarks measure a steady state, not the warm-up).
      source.resetMetrics?.();
      reply(200, { status: 'reset' });
    } else reply(404, { status: 'not found' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve(server));
  });
}
