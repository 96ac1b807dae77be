import type { Server } from 'node:http';
import { createServer } from '../node-http.js';
import type { AddressInfo } from 'node:net';
import type { Metrics } from './metrics.js';

export interface HealthSource {
  /** Liveness: the process's loops are alive. */
  live(): boolean;
  /** Readiness: the database answers and migrations are done. */
  ready(): boolean;
}

/** /metrics (Prometheus text), /healthz (liveness), /readyz (readiness). Nothing else. */
export class HttpServer {
  private server: Server | undefined;

  constructor(
    private readonly port: number,
    private readonly health: HealthSource,
    private readonly metrics: Metrics,
    private readonly host = '0.0.0.0',
  ) {}

  async start(): Promise<number> {
    if (this.server) return (this.server.address() as AddressInfo).port;
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/healthz' || path === '/readyz') {
        const ok = path === '/healthz' ? this.health.live() : this.health.ready();
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ok\n' : 'not ready\n');
        return;
      }
      if (path === '/metrics') {
        this.metrics.registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(text),
          (err: unknown) => res.writeHead(500).end(String(err)),
        );
        return;
      }
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    });
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, this.host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
