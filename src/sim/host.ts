import { encodeCommand, type Command } from '../kv/commands.js';
import type { JsonValue } from '../kv/json.js';
import type { ApplyResult } from '../kv/results.js';
import { KvStateMachine } from '../kv/state-machine.js';
import { RaftNode, type RaftConfig } from '../raft/node.js';
import { makeRng } from '../raft/rng.js';
import type { Message, NodeId } from '../raft/types.js';
import type { HostError, RaftHost } from '../server/driver.js';
import type { HostClock } from '../server/host-ports.js';
import type { PeerTransport } from '../server/host-ports.js';
import type { MemoryStorage } from '../storage/memory.js';
import { SimDisk } from './disk.js';
import type { InvariantChecker } from './invariants.js';
import { simHostClass, type HostBug } from './planted-host.js';
import type { EventQueue } from './queue.js';

export type ClientRequest =
  { readonly f: 'get'; readonly key: string } | { readonly f: 'write'; readonly command: Command };

export type ClientReply =
  | { readonly kind: 'applied'; readonly result: ApplyResult }
  | { readonly kind: 'read'; readonly value: JsonValue }
  | { readonly kind: 'redirect'; readonly leader: NodeId }
  | { readonly kind: 'retry' };

export interface HostOptions {
  readonly tickInterval: number;
  readonly diskDelay: () => number;
  readonly snapshotThreshold: number;
  readonly snapshotKeep: () => number;
  readonly raft: Partial<RaftConfig>;
  /** Bugs planted in the host loop (src/sim/planted-host.ts), to show the simulator finds them. */
  readonly hostBugs?: readonly HostBug[];
  readonly trace: ((line: string) => void) | null;
}

/** How long the host keeps a request before failing it (virtual ms; clients give up sooner). */
const REQUEST_TIMEOUT = 1000;

/**
 * One simulated server process: the production host loop (src/server/driver.ts, `RaftHost`) driving a real
 * Raft core and the key-value state machine, on the simulator's virtual clock, network and disk. A crash
 * drops the process (host, core, state machine and the disk's writes in flight); a start builds a new one
 * from what reached the disk, as a restarted server does.
 */
export class SimHost {
  readonly disk: SimDisk;
  node: RaftNode | null = null;
  sm: KvStateMachine | null = null;
  up = false;
  private host: RaftHost<ApplyResult, Command> | null = null;
  private incarnation = 0;
  private readonly choice: () => number;
  crashes = 0;
  /** Snapshots taken by earlier incarnations. */
  private earlierSnapshots = 0;

  constructor(
    readonly id: NodeId,
    private readonly peers: readonly NodeId[],
    private readonly seed: number,
    private readonly queue: EventQueue,
    private readonly send: (m: Message) => void,
    private readonly checker: InvariantChecker,
    private readonly opts: HostOptions,
  ) {
    this.disk = new SimDisk(peers, queue, opts.diskDelay, {
      onPersist: (entries, prevTerm) => checker.onPersist(id, entries, prevTerm),
    });
    this.choice = makeRng(seed * 2_654_435_761 + id * 97);
  }

  /** The disk: what survives a crash. */
  get storage(): MemoryStorage {
    return this.disk.durable;
  }

  get snapshots(): number {
    return this.earlierSnapshots + (this.host?.counters.snapshotsCreated ?? 0);
  }

  start(): void {
    this.up = true;
    const inc = ++this.incarnation;
    const visible = this.disk.mount();
    const snap = visible.snapshot();
    const sm = new KvStateMachine();
    if (snap.metadata.index > 0) sm.restore(snap.data);
    const node = new RaftNode({
      ...this.opts.raft,
      id: this.id,
      storage: visible,
      peers: this.peers,
      rng: makeRng(this.seed * 1_000_003 + this.id * 7919 + inc * 104_729),
      applied: snap.metadata.index,
      // The server always runs with lazy commit updates; half the runs cover the core's other mode.
      lazyCommitUpdates: this.choice() < 0.5,
    });
    this.node = node;
    this.sm = sm;
    const Host = simHostClass(this.opts.hostBugs ?? [], (e) => this.checker.onApply(this.id, e));
    this.host = new Host({
      id: this.id,
      peers: this.peers,
      core: node,
      storage: this.disk,
      transport: this.transport(inc),
      sm,
      clock: this.clock(inc),
      tickMs: this.opts.tickInterval,
      requestTimeoutMs: REQUEST_TIMEOUT,
      snapshotThreshold: this.opts.snapshotThreshold,
      snapshotTrailing: this.opts.snapshotKeep(),
      applied: snap.metadata.index,
      onError: (err) => {
        throw err;
      },
    });
    this.opts.trace?.(`${this.queue.now} node ${this.id} starts (incarnation ${inc}, snapshot ${snap.metadata.index})`);
  }

  /** Crash: everything in memory is lost; the disk keeps what it had written (see SimDisk.crash). */
  crash(rng: () => number): void {
    if (!this.up) return;
    const kept = this.disk.crash(rng);
    this.opts.trace?.(`${this.queue.now} node ${this.id} crashes${kept}`);
    this.earlierSnapshots += this.host?.counters.snapshotsCreated ?? 0;
    this.up = false;
    this.incarnation++;
    this.crashes++;
    this.host = null;
    this.node = null;
    this.sm = null;
  }

  receive(m: Message): void {
    if (this.up) this.host?.receive(m);
  }

  handleClient(req: ClientRequest, reply: (r: ClientReply) => void): void {
    const host = this.host;
    const sm = this.sm;
    if (!this.up || !host || !sm) return; // no answer: the client times out
    const inc = this.incarnation;
    const fail = (e: HostError) => {
      if (inc !== this.incarnation) return;
      reply(e.failure.kind === 'not-leader' ? { kind: 'redirect', leader: e.failure.leader } : { kind: 'retry' });
    };
    if (req.f === 'get') {
      host.submitRead({
        resolve: () => {
          if (inc === this.incarnation) reply({ kind: 'read', value: sm.get(req.key)?.value ?? null });
        },
        reject: fail,
      });
    } else {
      host.submitProposal(encodeCommand(req.command), req.command, {
        resolve: (result) => {
          if (inc === this.incarnation) reply({ kind: 'applied', result });
        },
        reject: fail,
      });
    }
  }

  /** The host's clock for one incarnation: virtual time; its timers die with the process. */
  private clock(inc: number): HostClock {
    const alive = () => this.up && inc === this.incarnation;
    // Stagger the first tick so that the nodes do not tick in lockstep.
    const offset = 1 + ((this.id * 3) % this.opts.tickInterval);
    return {
      now: () => this.queue.now,
      every: (ms, fn) => {
        let stopped = false;
        const run = () => {
          if (stopped || !alive()) return;
          fn();
          this.queue.schedule(ms, run);
        };
        this.queue.schedule(Math.min(ms, offset), run);
        return () => {
          stopped = true;
        };
      },
      defer: (fn) =>
        this.queue.schedule(0, () => {
          if (alive()) fn();
        }),
    };
  }

  private transport(inc: number): PeerTransport {
    return {
      send: (msgs) => {
        if (!this.up || inc !== this.incarnation) return;
        for (const m of msgs) this.send(m);
      },
      setFaults: () => undefined,
      stats: () => ({}),
      close: () => Promise.resolve(),
    };
  }
}
