/** /healthz (process alive, not failed), /readyz (streaming or snapshotting, broker reachable), /metrics. */
import { createServer } from 'node:http';
import type { Server } from 'node:http';

export interface HealthSource {
  live(): boolean;
  ready(): boolean;
  metrics(): Record<string, unknown>;
}

export function startHealthServer(port: number, source: HealthSource): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (path === '/healthz') reply(source.live() ? 200 : 503, { status: source.live() ? 'ok' : 'failed' });
    else if (path === '/readyz') reply(source.ready() ? 200 : 503, { status: source.ready() ? 'ready' : 'not ready' });
    else if (path === '/metrics') reply(200, source.metrics());
    else reply(404, { status: 'not found' });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve(server));
  });
}
