import type { HistoryEvent } from '../check/history.js';
import type { Command } from '../kv/commands.js';
import type { JsonValue } from '../kv/json.js';
import type { NodeId } from '../raft/types.js';
import type { ClientReply, ClientRequest } from './host.js';
import type { EventQueue } from './queue.js';

/** One event of a recorded history (the format `src/check` reads and `quorumkv verify` writes). */
export type SimHistoryEvent = HistoryEvent;

export interface ClientOptions {
  readonly keys: readonly string[];
  readonly attemptTimeout: number;
  /** After this long without a definite answer, a write is recorded as unknown (info). */
  readonly opDeadline: () => number;
  readonly thinkTime: () => number;
  readonly requestDelay: () => number;
}

interface Op {
  readonly f: SimHistoryEvent['f'];
  readonly key: string;
  readonly value: JsonValue;
  readonly invoked: number;
  readonly request: ClientRequest;
  attempt: number;
}

/**
 * A simulated client: one operation at a time, against whichever node it believes leads; retries writes
 * with the same request id (applied at most once), and gives up after a deadline, recording the outcome as
 * unknown and continuing as a new process (as Jepsen does).
 */
export class SimClient {
  private op: Op | null = null;
  private seq = 0;
  private leaderGuess: NodeId = 0;
  private stopped = false;
  completed = 0;
  unknown = 0;
  /** Operations that did not finish within the deadline after the cluster was healed. */
  livenessFailures = 0;
  healedAt = Number.POSITIVE_INFINITY;

  constructor(
    private readonly name: string,
    private process: number,
    private readonly nextProcess: () => number,
    private readonly nodes: readonly NodeId[],
    private readonly queue: EventQueue,
    private readonly rng: () => number,
    private readonly send: (to: NodeId, req: ClientRequest, reply: (r: ClientReply) => void) => void,
    private readonly history: SimHistoryEvent[],
    private readonly opts: ClientOptions,
  ) {}

  start(): void {
    this.queue.schedule(this.opts.thinkTime(), () => this.next());
  }

  /** No new operations; the current one runs to its end. */
  stop(): void {
    this.stopped = true;
  }

  get busy(): boolean {
    return this.op !== null;
  }

  private next(): void {
    if (this.stopped) return;
    const key = this.opts.keys[Math.floor(this.rng() * this.opts.keys.length)];
    const r = this.rng();
    const value = this.seq + 1 + this.process * 100_000;
    const requestId = { client: this.name, seq: ++this.seq };
    let op: Op;
    if (r < 0.4) {
      op = { f: 'get', key, value: null, invoked: this.queue.now, request: { f: 'get', key }, attempt: 0 };
    } else if (r < 0.7) {
      const command: Command = { op: 'put', key, value, requestId };
      op = { f: 'put', key, value, invoked: this.queue.now, request: { f: 'write', command }, attempt: 0 };
    } else if (r < 0.9) {
      // Compare-and-set from a recently written value (or from absent) to a new one.
      const expected = this.rng() < 0.2 ? null : Math.max(1, value - 1 - Math.floor(this.rng() * 3));
      const command: Command =
        expected === null
          ? { op: 'put', key, value, ifVersion: 0, requestId }
          : { op: 'put', key, value, ifValue: expected, hasIfValue: true, requestId };
      op = {
        f: 'cas',
        key,
        value: [expected, value],
        invoked: this.queue.now,
        request: { f: 'write', command },
        attempt: 0,
      };
    } else {
      const command: Command = { op: 'delete', key, requestId };
      op = { f: 'delete', key, value: null, invoked: this.queue.now, request: { f: 'write', command }, attempt: 0 };
    }
    this.op = op;
    this.history.push({ process: this.process, type: 'invoke', f: op.f, key, value: op.value, time: this.queue.now });
    this.attempt(op);
  }

  private target(): NodeId {
    if (this.leaderGuess !== 0) return this.leaderGuess;
    return this.nodes[Math.floor(this.rng() * this.nodes.length)];
  }

  private attempt(op: Op): void {
    const attempt = ++op.attempt;
    const to = this.target();
    const live = () => this.op === op && op.attempt === attempt;
    const d1 = this.opts.requestDelay();
    this.queue.schedule(d1, () =>
      this.send(to, op.request, (reply) => {
        this.queue.schedule(this.opts.requestDelay(), () => {
          if (live()) this.onReply(op, to, reply);
        });
      }),
    );
    this.queue.schedule(this.opts.attemptTimeout, () => {
      if (!live()) return;
      this.leaderGuess = 0;
      this.retryOrGiveUp(op);
    });
  }

  private retryOrGiveUp(op: Op): void {
    const deadline = op.invoked >= this.healedAt ? 4 * this.opts.opDeadline() : this.opts.opDeadline();
    if (this.queue.now - op.invoked > deadline) {
      if (op.invoked >= this.healedAt) this.livenessFailures++;
      // A read that timed out had no effect; a write may or may not have taken effect.
      this.finish(op, op.f === 'get' ? 'fail' : 'info', op.value);
      if (op.f !== 'get') {
        this.unknown++;
        this.process = this.nextProcess();
      }
      return;
    }
    this.queue.schedule(1 + Math.floor(this.rng() * 5), () => {
      if (this.op === op) this.attempt(op);
    });
  }

  private onReply(op: Op, from: NodeId, reply: ClientReply): void {
    switch (reply.kind) {
      case 'redirect':
        this.leaderGuess = reply.leader !== from ? reply.leader : 0;
        this.retryOrGiveUp(op);
        return;
      case 'retry':
        this.retryOrGiveUp(op);
        return;
      case 'read':
        this.leaderGuess = from;
        this.finish(op, 'ok', reply.value);
        return;
      case 'applied': {
        this.leaderGuess = from;
        const k = reply.result.kind;
        if (k === 'created' || k === 'replaced' || k === 'deleted') this.finish(op, 'ok', op.value);
        else if (k === 'precondition-failed' || k === 'not-found') this.finish(op, 'fail', op.value);
        else {
          // expired session or invalid: the outcome is not known.
          this.unknown++;
          this.finish(op, 'info', op.value);
          this.process = this.nextProcess();
        }
        return;
      }
    }
  }

  private finish(op: Op, type: 'ok' | 'fail' | 'info', value: JsonValue): void {
    this.history.push({ process: this.process, type, f: op.f, key: op.key, value, time: this.queue.now });
    this.op = null;
    this.completed++;
    this.queue.schedule(this.opts.thinkTime(), () => this.next());
  }
}
