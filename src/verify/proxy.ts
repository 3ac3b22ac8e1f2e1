/**
 * A TCP proxy for one directed link (node i -> node j): listens on 127.0.0.1 and forwards every accepted
 * connection to j's real port. The fault injector switches its mode at run time:
 *
 * - `pass`: bytes flow both ways;
 * - `refuse`: every open connection is destroyed and new ones are closed as soon as they are accepted;
 * - `blackhole`: connections stay open (and new ones are accepted) but every byte in either direction is
 *   discarded, so the sender sees a silent peer rather than an error.
 *
 * Going back to `pass` from `blackhole` resets the connections that lost bytes, since a stream with a hole
 * in it would be corrupt; the peers reconnect on their own.
 */
import net from 'node:net';

export type LinkMode = 'pass' | 'refuse' | 'blackhole';

interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  /** Bytes were discarded on this pair: it cannot be resumed. */
  damaged: boolean;
}

export class LinkProxy {
  private modeNow: LinkMode = 'pass';
  private readonly pairs = new Set<Pair>();
  /** Connections accepted since start (statistics for tests and reports). */
  accepted = 0;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (s) => this.accept(s));
  }

  /** Listens on a free port of 127.0.0.1 (or `port`) and forwards to `target`. */
  static async start(target: { host: string; port: number }, port = 0): Promise<LinkProxy> {
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr === null || typeof addr !== 'object') throw new Error('proxy: no listening address');
    return new LinkProxy(server, addr.port, target);
  }

  get mode(): LinkMode {
    return this.modeNow;
  }

  /** Open proxied connections. */
  get connections(): number {
    return this.pairs.size;
  }

  setMode(mode: LinkMode): void {
    const was = this.modeNow;
    this.modeNow = mode;
    if (mode === 'refuse') {
      for (const p of [...this.pairs]) this.drop(p);
    } else if (mode === 'pass' && was === 'blackhole') {
      for (const p of [...this.pairs]) if (p.damaged) this.drop(p);
    }
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    if (this.modeNow === 'refuse') {
      client.destroy();
      return;
    }
    client.setNoDelay(true);
    const upstream = net.connect({ host: this.target.host, port: this.target.port, noDelay: true });
    const pair: Pair = { client, upstream, damaged: false };
    this.pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk: Buffer) => {
        if (this.modeNow !== 'pass') {
          pair.damaged = true;
          return;
        }
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const end = () => this.drop(pair);
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
      s.on('end', end);
    }
  }

  private drop(p: Pair): void {
    if (!this.pairs.delete(p)) return;
    p.client.destroy();
    p.upstream.destroy();
  }

  async close(): Promise<void> {
    for (const p of [...this.pairs]) this.drop(p);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
