import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy to the database that a test can cut: a network partition of one replica.
 * `cut()` closes every open connection (the server sees them go, so locks and
 * transactions are released) and leaves new ones hanging unanswered, as a dropped
 * network does; `heal()` forwards again.
 */
export class PartitionProxy {
  private readonly sockets = new Set<Socket>();
  private severed = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<PartitionProxy> {
    const accept: { to?: PartitionProxy } = {};
    const server = createServer((client) => accept.to!.accept(client, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    accept.to = new PartitionProxy(server, (server.address() as { port: number }).port);
    return accept.to;
  }

  /** The same URL, through this proxy. */
  url(of: string): string {
    const u = new URL(of);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.href;
  }

  cut(): void {
    this.severed = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  heal(): void {
    this.severed = false;
    for (const s of this.sockets) s.destroy(); // the hanging ones: let clients reconnect
    this.sockets.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    this.sockets.add(client);
    client.on('close', () => this.sockets.delete(client));
    client.on('error', () => client.destroy());
    if (this.severed) return; // a black hole: nothing answers
    const upstream = connect(target.port, target.host);
    this.sockets.add(upstream);
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      client.destroy();
    });
    upstream.on('error', () => upstream.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
