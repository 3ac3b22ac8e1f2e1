/**
 * Peer transport over TCP.
 *
 * - One persistent outbound connection per peer, opened by this node. Every connection starts with the
 *   authenticated handshake of handshake.ts (challenge, hello, welcome): the acceptor admits it, and the
 *   dialer writes to it, only once the other side has proved it holds the cluster secret. A connection
 *   that fails it is closed at once, counted by reason (`stats().authRefused`) and logged once per source
 *   address. After the handshake, inbound connections only ever carry messages towards us.
 * - `send` never blocks: each message is encoded into its frame at once (so its size is known), then queued
 *   on its peer's bounded queue; a message that is too large or finds the queue full is dropped and counted. Queues are
 *   flushed at the end of the callback that sent (a microtask), with one socket write per batch (frames
 *   concatenated), and not while the socket is applying back-pressure.
 * - Lost connections are re-opened with jittered exponential backoff (50 ms doubling to 1 s). Peer errors
 *   never throw out of the transport; a frame over the size limit or a malformed frame closes that connection.
 * - `setFaults` drops or delays traffic to and from chosen peers, at sending and at receiving, so tests can
 *   cut a link in one direction or isolate a node entirely without touching sockets.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Message, NodeId } from '../raft/types.js';
import {
  CodecError,
  FrameDecoder,
  MAX_HANDSHAKE_BYTES,
  decodeFrameBody,
  encodeChallengeBody,
  encodeFrame,
  encodeWelcomeBody,
  joinFrames,
  FRAME_HEADER_BYTES,
} from './codec.js';
import { checkHello, handshakeNonce, welcomeMac } from './handshake.js';
import { OutboundLink, presentsNodeCertificate, type LinkOptions, type PeerTlsOptions } from './link.js';
import { RefusalLog, type PeerKeys, type RefusalSample } from './peer-auth.js';
import { PREFERRED_CIPHERS } from './tls-config.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Runtime fault injection (tests). `drop`: peers whose traffic is dropped in both directions; `dropOutbound`
 * / `dropInbound`: one direction only; `delayMs`: added latency on every message this node sends and
 * receives (so a link between a delayed node and a normal one gets `delayMs` each way).
 */
export interface LinkFaults {
  readonly drop?: readonly NodeId[];
  readonly dropOutbound?: readonly NodeId[];
  readonly dropInbound?: readonly NodeId[];
  readonly delayMs?: number;
}

/** Structural logger; a pino/Fastify logger fits. */
export interface TransportLogger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export interface PeerStats {
  readonly id: NodeId;
  /** Address we dial, or undefined for a peer only seen inbound. */
  readonly address?: string;
  /** The outbound connection is established. */
  readonly connected: boolean;
  /** Messages written to the outbound socket. */
  readonly sent: number;
  /** Messages received from this peer and delivered to the handler. */
  readonly received: number;
  /** All messages to or from this peer that were dropped (sum of the next four). */
  readonly dropped: number;
  readonly droppedQueueFull: number;
  readonly droppedOversize: number;
  readonly droppedFault: number;
  /** Messages discarded from the queue on close. */
  readonly droppedOnClose: number;
  readonly queueLength: number;
  readonly queueBytes: number;
  /** Successful outbound connections after the first one. */
  readonly reconnects: number;
  /** Outbound connections whose handshake failed (the peer refused our hello, or its welcome was wrong). */
  readonly handshakeFailures: number;
  /** Inbound connections from this peer currently open. */
  readonly inboundConnections: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

export interface TransportStats {
  readonly id: NodeId;
  readonly port: number;
  readonly peers: readonly PeerStats[];
  /** Authenticated inbound connections closed for a protocol violation (malformed or oversized frame). */
  readonly protocolErrors: number;
  /**
   * Inbound connections refused before or during the handshake, by reason: `missing` (no hello, or another
   * frame first), `malformed` (an undecodable hello or another protocol version), `bad-signature` (the
   * hello's MAC does not verify: wrong secret, replayed handshake, or addressed to another node); with mutual
   * TLS also `tls` (the TLS handshake failed: no certificate, or one the cluster CA did not sign) and
   * `bad-certificate` (a CA-signed certificate that is not a node certificate).
   */
  readonly authRefused: readonly RefusalSample[];
  /** Messages addressed to a node that is not a configured peer. */
  readonly unknownDestination: number;
}

export interface Transport {
  /** Never blocks; bounded per-peer queue; drops (and counts) when full or oversized. */
  send(msgs: readonly Message[]): void;
  onMessage(handler: (m: Message) => void): void;
  setFaults(f: LinkFaults): void;
  stats(): TransportStats;
  close(): Promise<void>;
}

export interface TcpTransportOptions {
  readonly id: NodeId;
  readonly host: string;
  /** 0 picks a free port (see `port`). */
  readonly port: number;
  /** Every other node's transport address (an entry for `id` itself is ignored). */
  readonly peers: ReadonlyMap<NodeId, PeerAddress>;
  /** Largest encoded message accepted or sent, in bytes. Default 16 MiB. */
  readonly maxMessageBytes?: number;
  /** Messages queued per peer before new ones are dropped. Default 8192. */
  readonly queueLimit?: number;
  /** Bytes queued per peer before new messages are dropped. Default 64 MiB. */
  readonly queueBytesLimit?: number;
  readonly faults?: LinkFaults;
  readonly log?: TransportLogger;
  /** Reconnect backoff bounds in ms. Defaults 50 and 1000. */
  readonly backoffMinMs?: number;
  readonly backoffMaxMs?: number;
  /** The cluster keys every connection's handshake proves; undefined: no secret (MACs unchecked). */
  readonly keys?: PeerKeys;
  /**
   * Mutual TLS: every connection is TLS, and each side must present a node certificate signed by the CA
   * (a user's client certificate, which lacks server authentication, is refused). Undefined: plain TCP.
   */
  readonly tls?: PeerTlsOptions;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_QUEUE_LIMIT = 8192;
export const DEFAULT_QUEUE_BYTES_LIMIT = 64 * 1024 * 1024;
const HELLO_TIMEOUT_MS = 5000;

const silentLog: TransportLogger = { debug() {}, info() {}, warn() {}, error() {} };

/** Counters of the receiving side of one peer. */
interface InboundCounters {
  received: number;
  droppedFault: number;
  connections: number;
  bytes: number;
}

export class TcpTransport implements Transport {
  private readonly links = new Map<NodeId, OutboundLink>();
  private readonly inbound = new Map<NodeId, InboundCounters>();
  private readonly sockets = new Set<net.Socket>();
  private handler: (m: Message) => void = () => {};
  private faults: LinkFaults = {};
  private dropOut = new Set<NodeId>();
  private dropIn = new Set<NodeId>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;
  private protocolErrors = 0;
  private unknownDestination = 0;
  private readonly maxMessageBytes: number;
  private readonly log: TransportLogger;
  private readonly keys: PeerKeys | undefined;
  private readonly refusals: RefusalLog;

  private constructor(
    readonly id: NodeId,
    private readonly server: net.Server,
    readonly port: number,
    opts: TcpTransportOptions,
  ) {
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.log = opts.log ?? silentLog;
    this.keys = opts.keys;
    this.refusals = new RefusalLog((msg) => this.log.warn(`transport ${id}: ${msg}`));
    const linkOpts: LinkOptions = {
      queueLimit: opts.queueLimit ?? DEFAULT_QUEUE_LIMIT,
      queueBytesLimit: opts.queueBytesLimit ?? DEFAULT_QUEUE_BYTES_LIMIT,
      backoffMinMs: opts.backoffMinMs ?? 50,
      backoffMaxMs: opts.backoffMaxMs ?? 1000,
      keys: opts.keys,
      log: this.log,
      ...(opts.tls === undefined ? {} : { tls: opts.tls }),
    };
    for (const [peer, addr] of opts.peers) {
      if (peer === id) continue;
      this.links.set(peer, new OutboundLink(id, peer, addr.host, addr.port, linkOpts));
    }
    this.setFaults(opts.faults ?? {});
    if (opts.tls === undefined) server.on('connection', (s: net.Socket) => this.accept(s));
    else {
      server.on('secureConnection', (s: tls.TLSSocket) => this.accept(s));
      server.on('tlsClientError', (err: Error, s: tls.TLSSocket) =>
        this.refusals.record('transport', 'tls', s.remoteAddress ?? '?', err.message),
      );
    }
    server.on('error', (err) => this.log.error(`transport ${id}: server error: ${err.message}`));
    for (const link of this.links.values()) link.start();
  }

  /** Listens on host:port and starts connecting to every peer. */
  static async listen(opts: TcpTransportOptions): Promise<TcpTransport> {
    const t = opts.tls;
    const server =
      t === undefined
        ? net.createServer({ noDelay: true })
        : tls.createServer({
            ...t,
            noDelay: true,
            requestCert: true,
            rejectUnauthorized: true,
            minVersion: 'TLSv1.2',
            ciphers: PREFERRED_CIPHERS,
            honorCipherOrder: true,
          });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    const port = typeof addr === 'object' && addr !== null ? addr.port : opts.port;
    return new TcpTransport(opts.id, server, port, opts);
  }

  onMessage(handler: (m: Message) => void): void {
    this.handler = handler;
  }

  setFaults(f: LinkFaults): void {
    this.faults = { ...f };
    this.dropOut = new Set([...(f.drop ?? []), ...(f.dropOutbound ?? [])]);
    this.dropIn = new Set([...(f.drop ?? []), ...(f.dropInbound ?? [])]);
  }

  faultsNow(): LinkFaults {
    return this.faults;
  }

  send(msgs: readonly Message[]): void {
    if (this.closed) return;
    const delay = this.faults.delayMs ?? 0;
    for (const m of msgs) {
      if (m.to === this.id) {
        setImmediate(() => this.deliver(m, this.id));
        continue;
      }
      const link = this.links.get(m.to);
      if (link === undefined) {
        this.unknownDestination++;
        continue;
      }
      if (this.dropOut.has(m.to)) {
        link.counters.droppedFault++;
        continue;
      }
      let frame: Buffer;
      try {
        frame = encodeFrame(m);
      } catch (err) {
        this.log.error(`transport ${this.id}: cannot encode ${m.type} to ${m.to}: ${(err as Error).message}`);
        link.counters.droppedOversize++;
        continue;
      }
      const size = frame.length - FRAME_HEADER_BYTES;
      if (size > this.maxMessageBytes) {
        link.counters.droppedOversize++;
        this.log.warn(`transport ${this.id}: dropped ${m.type} to ${m.to}: ${size} bytes over the limit`);
        continue;
      }
      if (delay > 0) this.later(delay, () => link.enqueue(frame));
      else link.enqueue(frame);
    }
  }

  stats(): TransportStats {
    const ids = new Set<NodeId>([...this.links.keys(), ...this.inbound.keys()]);
    const peers: PeerStats[] = [...ids]
      .sort((a, b) => a - b)
      .map((id) => {
        const link = this.links.get(id);
        const inb = this.inbound.get(id);
        const c = link?.counters;
        const droppedQueueFull = c?.droppedQueueFull ?? 0;
        const droppedOversize = c?.droppedOversize ?? 0;
        const droppedFault = (c?.droppedFault ?? 0) + (inb?.droppedFault ?? 0);
        const droppedOnClose = c?.droppedOnClose ?? 0;
        return {
          id,
          address: link === undefined ? undefined : `${link.host}:${link.port}`,
          connected: link?.connected ?? false,
          sent: c?.sent ?? 0,
          received: inb?.received ?? 0,
          dropped: droppedQueueFull + droppedOversize + droppedFault + droppedOnClose,
          droppedQueueFull,
          droppedOversize,
          droppedFault,
          droppedOnClose,
          queueLength: link?.queueLength ?? 0,
          queueBytes: link?.queueBytes ?? 0,
          reconnects: c?.reconnects ?? 0,
          handshakeFailures: c?.handshakeFailures ?? 0,
          inboundConnections: inb?.connections ?? 0,
          bytesSent: c?.bytes ?? 0,
          bytesReceived: inb?.bytes ?? 0,
        };
      });
    return {
      id: this.id,
      port: this.port,
      peers,
      protocolErrors: this.protocolErrors,
      authRefused: this.refusals.snapshot(),
      unknownDestination: this.unknownDestination,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const link of this.links.values()) link.close();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await done;
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    this.timers.add(t);
  }

  private counters(peer: NodeId): InboundCounters {
    let c = this.inbound.get(peer);
    if (c === undefined) {
      c = { received: 0, droppedFault: 0, connections: 0, bytes: 0 };
      this.inbound.set(peer, c);
    }
    return c;
  }

  private deliver(m: Message, from: NodeId): void {
    if (this.closed) return;
    const c = this.counters(from);
    if (this.dropIn.has(from)) {
      c.droppedFault++;
      return;
    }
    c.received++;
    try {
      this.handler(m);
    } catch (err) {
      this.log.error(`transport ${this.id}: message handler threw: ${(err as Error).stack ?? String(err)}`);
    }
  }

  private accept(socket: net.Socket): void {
    if (this.closed) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 5000);
    // Handshake frames are small: an unauthenticated connection cannot make us buffer more.
    const decoder = new FrameDecoder(MAX_HANDSHAKE_BYTES);
    const source = socket.remoteAddress ?? '?';
    const remote = `${source}:${socket.remotePort ?? '?'}`;
    const challenge = handshakeNonce();
    let peer: NodeId | undefined;
    const helloTimer = setTimeout(() => refuse('missing', 'no hello in time'), HELLO_TIMEOUT_MS);
    const refuse = (reason: 'missing' | 'malformed' | 'bad-signature' | 'bad-certificate', why: string): void => {
      if (socket.destroyed) return;
      this.refusals.record('transport', reason, source, `${remote}: ${why}`);
      socket.destroy();
    };
    const fail = (why: string): void => {
      if (socket.destroyed) return;
      this.protocolErrors++;
      this.log.warn(`transport ${this.id}: closing inbound connection from ${peer ?? remote}: ${why}`);
      socket.destroy();
    };
    if (socket instanceof tls.TLSSocket && !presentsNodeCertificate(socket)) {
      clearTimeout(helloTimer);
      refuse('bad-certificate', 'its certificate is not a node certificate (no server authentication usage)');
      return;
    }
    socket.write(joinFrames([encodeChallengeBody(challenge)]));
    socket.on('data', (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = decoder.push(chunk);
      } catch (err) {
        if (peer === undefined) refuse('malformed', (err as Error).message);
        else fail((err as Error).message);
        return;
      }
      for (const body of bodies) {
        if (socket.destroyed) return;
        let frame;
        try {
          frame = decodeFrameBody(body);
        } catch (err) {
          const why = err instanceof CodecError ? err.message : String(err);
          if (peer === undefined) return refuse('malformed', why);
          return fail(why);
        }
        if (peer === undefined) {
          if (frame.kind !== 'hello') return refuse('missing', `first frame is a ${frame.kind}, not a hello`);
          if (frame.from <= 0 || frame.from === this.id) return refuse('malformed', `bad sender id ${frame.from}`);
          if (frame.to !== this.id) return refuse('bad-signature', `hello addressed to node ${frame.to}`);
          const key = checkHello(this.keys, frame.from, frame.to, challenge, frame.nonce, frame.mac);
          if (key < 0) return refuse('bad-signature', `hello from ${frame.from} does not prove the cluster secret`);
          clearTimeout(helloTimer);
          peer = frame.from;
          decoder.maxBodyBytes = this.maxMessageBytes;
          socket.write(
            joinFrames([encodeWelcomeBody(welcomeMac(this.keys, key, peer, this.id, challenge, frame.nonce))]),
          );
          const c = this.counters(peer);
          c.connections++;
          this.log.debug(`transport ${this.id}: inbound connection from ${peer} (${remote})`);
          continue;
        }
        if (frame.kind !== 'message') return fail(`unexpected ${frame.kind} frame`);
        const m = frame.message;
        if (m.from !== peer) return fail(`message from ${m.from} on the connection of ${peer}`);
        const delay = this.faults.delayMs ?? 0;
        const from = peer;
        if (delay > 0) this.later(delay, () => this.deliver(m, from));
        else this.deliver(m, from);
      }
      if (peer !== undefined) this.counters(peer).bytes += chunk.length;
    });
    socket.on('error', (err) => this.log.debug(`transport ${this.id}: inbound ${peer ?? remote}: ${err.message}`));
    socket.on('end', () => socket.destroy());
    socket.on('close', () => {
      clearTimeout(helloTimer);
      this.sockets.delete(socket);
      if (peer !== undefined) this.counters(peer).connections--;
    });
  }
}
