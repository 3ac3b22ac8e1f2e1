/**
 * One outbound peer connection: a bounded queue of encoded frames, a persistent socket that is re-opened
 * with jittered exponential backoff, and batched writes (all queued frames in one write, up to a batch
 * cap, never while the socket asks us to wait for 'drain'). Each new connection runs the dialer's side of
 * the handshake (handshake.ts) before the first frame is written; the link counts as connected only then.
 * With mutual TLS (a cluster CA), the connection is TLS: the peer must present a node certificate signed by
 * the CA and valid for the address dialled, and we present ours; the handshake then runs inside it.
 */
import net from 'node:net';
import tls from 'node:tls';
import { EKU_SERVER_AUTH } from './certs.js';
import type { NodeId } from '../raft/types.js';
import {
  CodecError,
  FrameDecoder,
  MAX_HANDSHAKE_BYTES,
  decodeFrameBody,
  encodeHelloBody,
  joinFrames,
} from './codec.js';
import { checkWelcome, handshakeNonce, helloMac } from './handshake.js';
import type { PeerKeys } from './peer-auth.js';
import type { TransportLogger } from './transport.js';

export interface LinkOptions {
  readonly queueLimit: number;
  readonly queueBytesLimit: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** The cluster keys the handshake proves (undefined: a node without a secret). */
  readonly keys: PeerKeys | undefined;
  readonly log: TransportLogger;
  /** Mutual TLS with the cluster CA (undefined: plain TCP). */
  readonly tls?: PeerTlsOptions;
}

/** A node's certificate, key and cluster CA (PEM), for mutual TLS between peers. */
export interface PeerTlsOptions {
  readonly cert: string | Buffer;
  readonly key: string | Buffer;
  readonly ca: string | Buffer;
}

/** Whether a socket error is a failed TLS negotiation or certificate check (not a network fault). */
export function isTlsFailure(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && /^ERR_SSL_|^ERR_TLS_|CERT|SIGNATURE|ISSUER/.test(code);
}

/** Whether a TLS peer presented a node certificate (server authentication), not a user's client certificate. */
export function presentsNodeCertificate(socket: tls.TLSSocket): boolean {
  const cert = socket.getPeerX509Certificate();
  return cert !== undefined && (cert.keyUsage ?? []).includes(EKU_SERVER_AUTH);
}

export interface LinkCounters {
  sent: number;
  bytes: number;
  droppedQueueFull: number;
  droppedOversize: number;
  droppedFault: number;
  droppedOnClose: number;
  reconnects: number;
  /** Connections closed before the handshake completed, or whose welcome did not verify. */
  handshakeFailures: number;
}

/** Largest single socket write; a longer queue is written in several batches. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 2000;

export class OutboundLink {
  readonly counters: LinkCounters = {
    sent: 0,
    bytes: 0,
    droppedQueueFull: 0,
    droppedOversize: 0,
    droppedFault: 0,
    droppedOnClose: 0,
    reconnects: 0,
    handshakeFailures: 0,
  };
  connected = false;
  private socket: net.Socket | undefined;
  private queue: Buffer[] = [];
  private head = 0;
  private bytes = 0;
  private attempt = 0;
  private everConnected = false;
  private waitingDrain = false;
  private flushScheduled = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private fullWarned = false;
  /** A failed handshake was logged at warn level; quieter until a connection succeeds again. */
  private handshakeWarned = false;

  constructor(
    private readonly self: NodeId,
    readonly peer: NodeId,
    readonly host: string,
    readonly port: number,
    private readonly opts: LinkOptions,
  ) {}

  get queueLength(): number {
    return this.queue.length - this.head;
  }

  get queueBytes(): number {
    return this.bytes;
  }

  start(): void {
    this.connect();
  }

  /** Queues one whole frame (length prefix included). */
  enqueue(frame: Buffer): void {
    if (this.closed) return;
    if (this.queueLength >= this.opts.queueLimit || this.bytes + frame.length > this.opts.queueBytesLimit) {
      this.counters.droppedQueueFull++;
      if (!this.fullWarned) {
        this.fullWarned = true;
        this.opts.log.warn(`transport ${this.self}: queue to ${this.peer} is full; dropping messages`);
      }
      return;
    }
    this.queue.push(frame);
    this.bytes += frame.length;
    this.scheduleFlush();
  }

  close(): void {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.counters.droppedOnClose += this.queueLength;
    this.queue = [];
    this.head = 0;
    this.bytes = 0;
    this.socket?.destroy();
    this.socket = undefined;
    this.connected = false;
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || !this.connected || this.waitingDrain) return;
    this.flushScheduled = true;
    // At the end of the current callback: every frame queued by it goes out in one write, at once (a
    // setImmediate would wait for the next loop turn, behind whatever input the poll phase brings).
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    const socket = this.socket;
    if (socket === undefined || !this.connected || this.waitingDrain || this.queueLength === 0) return;
    const batch: Buffer[] = [];
    let size = 0;
    while (this.head < this.queue.length && (batch.length === 0 || size < MAX_BATCH_BYTES)) {
      const b = this.queue[this.head] as Buffer;
      this.head++;
      batch.push(b);
      size += b.length;
    }
    this.bytes -= size;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head);
      this.head = 0;
    }
    if (this.queueLength < this.opts.queueLimit / 2) this.fullWarned = false;
    const data = batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch, size);
    this.counters.sent += batch.length;
    this.counters.bytes += data.length;
    if (!socket.write(data)) {
      this.waitingDrain = true;
      socket.once('drain', () => {
        this.waitingDrain = false;
        this.scheduleFlush();
      });
    } else if (this.queueLength > 0) {
      this.scheduleFlush();
    }
  }

  private connect(): void {
    if (this.closed) return;
    const t = this.opts.tls;
    const socket: net.Socket =
      t === undefined
        ? net.connect({ host: this.host, port: this.port, noDelay: true })
        : tls.connect({ host: this.host, port: this.port, ...t, minVersion: 'TLSv1.2' }).setNoDelay(true);
    this.socket = socket;
    // Bounds the connection and the handshake together.
    let handshaking = false;
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => {
      if (handshaking) fail('no answer to the handshake in time', false);
      else socket.destroy(new Error('connect timeout'));
    });
    socket.on(t === undefined ? 'connect' : 'secureConnect', () => {
      socket.setKeepAlive(true, 5000);
      handshaking = true;
      if (t !== undefined && !presentsNodeCertificate(socket as tls.TLSSocket)) {
        fail('its certificate is not a node certificate (no server authentication usage)', false);
      }
    });
    // After the handshake the peer never writes on this connection; reading lets us notice its end promptly.
    const decoder = new FrameDecoder(MAX_HANDSHAKE_BYTES);
    const nonce = handshakeNonce();
    let challenge: Buffer | undefined;
    /** `refused`: the peer rejected our hello or failed to prove the secret (not a mere network fault). */
    const fail = (why: string, refused = true): void => {
      if (!handshaking) return;
      handshaking = false;
      if (this.closed) return;
      this.counters.handshakeFailures++;
      const msg = `transport ${this.self}: handshake with ${this.peer} (${this.host}:${this.port}) failed: ${why}`;
      if (this.handshakeWarned) this.opts.log.debug(msg);
      else this.opts.log.warn(refused ? `${msg} (does it hold this cluster's secret?)` : msg);
      this.handshakeWarned = true;
      socket.destroy();
    };
    socket.on('data', (chunk: Buffer) => {
      if (!handshaking) return;
      let bodies: Buffer[];
      try {
        bodies = decoder.push(chunk);
      } catch (err) {
        return fail((err as Error).message);
      }
      for (const body of bodies) {
        let frame;
        try {
          frame = decodeFrameBody(body);
        } catch (err) {
          return fail(err instanceof CodecError ? err.message : String(err));
        }
        if (challenge === undefined) {
          if (frame.kind !== 'challenge') return fail(`expected a challenge, got a ${frame.kind} frame`);
          challenge = Buffer.from(frame.nonce);
          const mac = helloMac(this.opts.keys, this.self, this.peer, challenge, nonce);
          socket.write(joinFrames([encodeHelloBody({ from: this.self, to: this.peer, nonce, mac })]));
          continue;
        }
        if (frame.kind !== 'welcome') return fail(`expected a welcome, got a ${frame.kind} frame`);
        if (!checkWelcome(this.opts.keys, this.self, this.peer, challenge, nonce, frame.mac)) {
          return fail('the welcome does not prove the cluster secret');
        }
        handshaking = false;
        this.established(socket);
        return;
      }
    });
    socket.on('end', () => socket.destroy());
    socket.on('error', (err) => {
      const msg = `transport ${this.self}: link to ${this.peer} (${this.host}:${this.port}): ${err.message}`;
      if (t !== undefined && !this.connected && isTlsFailure(err)) {
        this.counters.handshakeFailures++;
        if (this.handshakeWarned) this.opts.log.debug(msg);
        else this.opts.log.warn(`${msg} (TLS: are both certificates signed by this cluster's CA?)`);
        this.handshakeWarned = true;
        return;
      }
      if (this.connected) this.opts.log.warn(msg);
      else this.opts.log.debug(msg);
    });
    socket.on('close', () => {
      // Closed after our hello: the peer refused it (or died meanwhile).
      if (challenge !== undefined) fail('the peer closed the connection after our hello');
      handshaking = false;
      if (this.socket !== socket) return;
      const wasConnected = this.connected;
      this.connected = false;
      this.socket = undefined;
      if (this.closed) return;
      if (wasConnected) this.opts.log.warn(`transport ${this.self}: lost connection to ${this.peer}`);
      this.scheduleReconnect();
    });
  }

  /** The handshake succeeded: the link is up and its queue flows. */
  private established(socket: net.Socket): void {
    socket.setTimeout(0);
    this.connected = true;
    this.waitingDrain = false;
    this.attempt = 0;
    this.handshakeWarned = false;
    if (this.everConnected) this.counters.reconnects++;
    this.everConnected = true;
    this.opts.log.info(`transport ${this.self}: connected to ${this.peer} at ${this.host}:${this.port}`);
    this.scheduleFlush();
  }

  private scheduleReconnect(): void {
    const base = Math.min(this.opts.backoffMaxMs, this.opts.backoffMinMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    const delay = base / 2 + Math.random() * (base / 2);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, delay);
  }
}
