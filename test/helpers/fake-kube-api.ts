import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const LEASES = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/?]+))?(?:\?.*)?$/;

export interface LeaseObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string; [k: string]: unknown };
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface Recorded {
  method: string;
  path: string;
  authorization: string | undefined;
  status: number;
  body: LeaseObject | undefined;
}

/**
 * The Lease endpoints of a Kubernetes API server, over real HTTPS: GET/POST/PUT with
 * resourceVersion checks (409 on a stale one), 404 for a missing Lease, and a log of
 * every request with its Authorization header.
 */
export class FakeKubeApi {
  readonly leases = new Map<string, LeaseObject>();
  readonly requests: Recorded[] = [];
  /** Answer every request with this status instead of serving it. */
  failWith: number | undefined;
  /** Never answer (a hung API server). */
  hang = false;
  /** Runs before a write is applied: lets a test slip in a competing write. */
  beforeWrite: ((method: string, key: string) => void) | undefined;
  private version = 1000;
  private readonly hung: ServerResponse[] = [];
  readonly server: Server;

  constructor(key: Buffer, cert: Buffer) {
    this.server = createServer({ key, cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => this.handle(req, res, Buffer.concat(chunks).toString('utf8')));
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    for (const res of this.hung.splice(0)) res.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  releaseHung(): void {
    for (const res of this.hung.splice(0)) res.destroy();
  }

  /** Stores a lease as the server would, with a fresh resourceVersion. */
  put(namespace: string, lease: LeaseObject): LeaseObject {
    const stored: LeaseObject = structuredClone(lease);
    stored.metadata = { ...stored.metadata, namespace, resourceVersion: String(++this.version) };
    this.leases.set(`${namespace}/${stored.metadata.name}`, stored);
    return stored;
  }

  lease(namespace: string, name: string): LeaseObject | undefined {
    return this.leases.get(`${namespace}/${name}`);
  }

  requestsBy(token: string, name?: string): Recorded[] {
    return this.requests.filter(
      (r) => r.authorization === `Bearer ${token}` && (name === undefined || r.path.includes(`/leases/${name}`) || r.body?.metadata.name === name),
    );
  }

  private handle(req: IncomingMessage, res: ServerResponse, raw: string): void {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const body = raw ? (JSON.parse(raw) as LeaseObject) : undefined;
    const record: Recorded = { method, path, authorization: req.headers.authorization, status: 0, body };
    this.requests.push(record);
    if (this.hang) {
      this.hung.push(res);
      return;
    }
    const reply = (status: number, payload: unknown): void => {
      record.status = status;
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    const failure = (status: number, reason: string, message: string): void =>
      reply(status, { kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code: status });

    if (this.failWith !== undefined) return failure(this.failWith, 'InternalError', 'injected failure');
    const match = LEASES.exec(path);
    if (!match) return failure(404, 'NotFound', `no route ${method} ${path}`);
    const namespace = match[1] ?? '';
    const name = match[2] ?? body?.metadata.name ?? '';
    const key = `${namespace}/${name}`;
    const current = this.leases.get(key);

    if (method === 'GET' && match[2]) {
      return current ? reply(200, current) : failure(404, 'NotFound', `leases "${name}" not found`);
    }
    if (method === 'POST' && !match[2] && body) {
      this.beforeWrite?.(method, key);
      if (this.leases.has(key)) return failure(409, 'AlreadyExists', `leases "${name}" already exists`);
      return reply(201, this.put(namespace, body));
    }
    if (method === 'PUT' && match[2] && body) {
      this.beforeWrite?.(method, key);
      const stored = this.leases.get(key);
      if (!stored) return failure(404, 'NotFound', `leases "${name}" not found`);
      if (body.metadata.resourceVersion !== stored.metadata.resourceVersion) {
        return failure(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version');
      }
      return reply(200, this.put(namespace, body));
    }
    return failure(405, 'MethodNotAllowed', `${method} not supported`);
  }
}

