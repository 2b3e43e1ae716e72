import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP load balancer on loopback, as in front of a fleet: each new connection goes to the next
 * backend in turn, and a backend that refuses it (stopped, killed, not listening yet) is skipped
 * for the next one, as a balancer whose endpoint list is late does. The test changes the list
 * (a rolling restart: add the new replica, remove the old one) and can cut every connection at
 * once, like a network partition or the balancer itself restarting.
 */
export class RoundRobinProxy {
  private server: Server | undefined;
  private backends: number[];
  private next = 0;
  /** Both ends of every forwarded connection, and clients still waiting for a backend. */
  private readonly sockets = new Set<Socket>();
  /** The client ends among {@link sockets}. */
  private readonly clients = new Set<Socket>();
  /** Connections forwarded, by backend port. */
  readonly forwarded = new Map<number, number>();
  /** Connection attempts a backend refused (then the next one was tried). */
  refused = 0;

  constructor(backends: readonly number[] = []) {
    this.backends = [...backends];
  }

  /** The port it listens on (after {@link listen}). */
  get port(): number {
    const address = this.server?.address();
    if (typeof address !== 'object' || address === null) throw new Error('the proxy is not listening');
    return address.port;
  }

  /** Starts accepting on a free loopback port. */
  async listen(): Promise<void> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.server = server;
  }

  add(port: number): void {
    if (!this.backends.includes(port)) this.backends.push(port);
  }

  /** Sends no new connection to `port`; those already open stay, as with a real balancer. */
  remove(port: number): void {
    this.backends = this.backends.filter((backend) => backend !== port);
  }

  /** Destroys every open connection, both ends; returns how many client connections were cut. */
  cutAll(): number {
    const cut = this.clients.size;
    for (const socket of this.sockets) socket.destroy();
    return cut;
  }

  /** Stops accepting and cuts every open connection. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server !== undefined) await new Promise((resolve) => server.close(resolve));
  }

  private accept(client: Socket): void {
    this.sockets.add(client);
    this.clients.add(client);
    client.on('error', () => client.destroy());
    client.on('close', () => {
      this.sockets.delete(client);
      this.clients.delete(client);
    });
    // This connection's turn, then the others in order. Until one accepts, nothing is read: what
    // the client sends waits in its socket.
    const turn = this.next;
    this.next += 1;
    const backends = this.backends;
    this.tryBackend(
      client,
      backends.map((_, offset) => backends[(turn + offset) % backends.length]),
    );
  }

  private tryBackend(client: Socket, candidates: readonly number[]): void {
    const [port, ...rest] = candidates;
    if (port === undefined || client.destroyed) {
      client.destroy();
      return;
    }
    const upstream = connect(port, '127.0.0.1');
    this.sockets.add(upstream);
    let connected = false;
    upstream.once('connect', () => {
      connected = true;
      this.forwarded.set(port, (this.forwarded.get(port) ?? 0) + 1);
      if (client.destroyed) {
        upstream.destroy();
        return;
      }
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
      client.pipe(upstream).pipe(client);
    });
    upstream.on('error', () => {
      if (!connected) this.refused += 1;
      upstream.destroy();
    });
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      if (!connected) this.tryBackend(client, rest);
    });
  }
}
