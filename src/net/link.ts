/**
 * One outbound peer connection: a bounded queue of encoded frames, a persistent socket that is re-opened
 * with jittered exponential backoff, and batched writes (all queued frames in one write, up to a batch
 * cap, never while the socket asks us to wait for 'drain').
 */
import net from 'node:net';
import type { NodeId } from '../raft/types.js';
import type { TransportLogger } from './transport.js';

export interface LinkOptions {
  readonly queueLimit: number;
  readonly queueBytesLimit: number;
  readonly backoffMinMs: number;
  readonly backoffMaxMs: number;
  /** The hello frame (length prefix included) sent first on every new connection. */
  readonly hello: Buffer;
  readonly log: TransportLogger;
}

export interface LinkCounters {
  sent: number;
  bytes: number;
  droppedQueueFull: number;
  droppedOversize: number;
  droppedFault: number;
  droppedOnClose: number;
  reconnects: number;
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
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    this.socket = socket;
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error('connect timeout')));
    socket.on('connect', () => {
      socket.setTimeout(0);
      socket.setKeepAlive(true, 5000);
      this.connected = true;
      this.waitingDrain = false;
      this.attempt = 0;
      if (this.everConnected) this.counters.reconnects++;
      this.everConnected = true;
      this.opts.log.info(`transport ${this.self}: connected to ${this.peer} at ${this.host}:${this.port}`);
      socket.write(this.opts.hello);
      this.scheduleFlush();
    });
    // The peer never writes on this connection; reading lets us notice its end promptly.
    socket.resume();
    socket.on('end', () => socket.destroy());
    socket.on('error', (err) => {
      const msg = `transport ${this.self}: link to ${this.peer} (${this.host}:${this.port}): ${err.message}`;
      if (this.connected) this.opts.log.warn(msg);
      else this.opts.log.debug(msg);
    });
    socket.on('close', () => {
      if (this.socket !== socket) return;
      const wasConnected = this.connected;
      this.connected = false;
      this.socket = undefined;
      if (this.closed) return;
      if (wasConnected) this.opts.log.warn(`transport ${this.self}: lost connection to ${this.peer}`);
      this.scheduleReconnect();
    });
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
