/**
 * The fault injector: on a seeded random schedule it crashes nodes (SIGKILL, then restart), pauses them
 * (SIGSTOP, then SIGCONT), partitions the network through the link proxies (refused or black-holed
 * links, then healed) and fills a node's disk (its data directory is a small file system; a filler file
 * takes the room left, then is deleted). Each step picks one fault, sometimes two of different kinds at once, holds them
 * for a while and heals them; the leader is a favoured target. Every fault is recorded with its times.
 */
import { setTimeout as sleepAbortable } from 'node:timers/promises';
import type { VerifyCluster } from './cluster.js';
import { nowNs } from './workload.js';

export type FaultKind = 'kill' | 'pause' | 'partition' | 'disk-full';
/** Every fault kind; `disk-full` needs root (each node's data directory is then a small tmpfs). */
export const FAULT_KINDS: readonly FaultKind[] = ['kill', 'pause', 'partition', 'disk-full'];
/** The default schedule's kinds. */
export const DEFAULT_FAULTS: readonly FaultKind[] = ['kill', 'pause', 'partition'];

export interface FaultRecord {
  readonly kind: FaultKind;
  readonly detail: string;
  /** Nanoseconds since the run's origin. */
  readonly start: number;
  end?: number;
  /** The fault hit the node that was leader when it was injected. */
  readonly hitLeader: boolean;
  /** disk-full: how long after the disk was filled the node reported it (its log writes waiting), if it did. */
  stalledAfterMs?: number;
}

export interface NemesisOptions {
  readonly kinds: readonly FaultKind[];
  readonly rng: () => number;
  readonly origin: bigint;
  /** Quiet time between faults, ms (uniform in [min, max]). */
  readonly gapMs: readonly [number, number];
  /** How long a fault is held, ms (uniform in [min, max]). */
  readonly holdMs: readonly [number, number];
  readonly log?: (line: string) => void;
}

export class Nemesis {
  readonly faults: FaultRecord[] = [];
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  /** Faults in effect now, for progress lines. */
  readonly active = new Set<FaultRecord>();

  constructor(
    private readonly cluster: VerifyCluster,
    private readonly opts: NemesisOptions,
  ) {}

  start(): void {
    if (this.opts.kinds.length === 0) return;
    this.loop = this.run().catch((err: unknown) => {
      this.error = err instanceof Error ? err : new Error(String(err));
      this.opts.log?.(`fault injector stopped by an error: ${this.error.message}`);
    });
  }

  /** An error that ended the schedule early (e.g. a node that could not be restarted). */
  error: Error | undefined;

  /** Ends the schedule; the faults in effect are healed by the caller (cluster.healAll()). */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    const t = nowNs(this.opts.origin);
    for (const f of this.active) f.end = t;
    this.active.clear();
    if (this.error !== undefined) throw this.error;
  }

  private uniform([lo, hi]: readonly [number, number]): number {
    return lo + Math.floor(this.opts.rng() * (hi - lo + 1));
  }

  private async sleep(ms: number): Promise<boolean> {
    try {
      await sleepAbortable(ms, undefined, { signal: this.abort.signal });
      return true;
    } catch {
      return false;
    }
  }

  private async run(): Promise<void> {
    while (await this.sleep(this.uniform(this.opts.gapMs))) {
      const kinds = this.opts.kinds;
      const first = kinds[Math.floor(this.opts.rng() * kinds.length)] as FaultKind;
      const chosen = [first];
      if (kinds.length > 1 && this.opts.rng() < 0.3) {
        const others = kinds.filter((k) => k !== first);
        chosen.push(others[Math.floor(this.opts.rng() * others.length)] as FaultKind);
      }
      const leader = await this.cluster.leader();
      const used = new Set<number>();
      const heals: (() => Promise<void>)[] = [];
      for (const kind of chosen) heals.push(await this.inject(kind, leader, used));
      await this.sleep(this.uniform(this.opts.holdMs));
      // Heal even when stopping, so the cluster is left whole.
      for (const heal of heals) await heal();
    }
  }

  /** Picks a target: the leader more often than not, else any node not hit by this step yet. */
  private target(leader: number | undefined, used: Set<number>): number {
    if (leader !== undefined && !used.has(leader) && this.opts.rng() < 0.6) return leader;
    const free = this.cluster.ids.filter((id) => !used.has(id));
    return free[Math.floor(this.opts.rng() * free.length)] as number;
  }

  private record(kind: FaultKind, detail: string, hitLeader: boolean): FaultRecord {
    const r: FaultRecord = { kind, detail, start: nowNs(this.opts.origin), hitLeader };
    this.faults.push(r);
    this.active.add(r);
    this.opts.log?.(`fault: ${kind} ${detail}${hitLeader ? ' (leader)' : ''}`);
    return r;
  }

  private close(r: FaultRecord): void {
    r.end = nowNs(this.opts.origin);
    this.active.delete(r);
    this.opts.log?.(`heal: ${r.kind} ${r.detail}`);
  }

  private async inject(kind: FaultKind, leader: number | undefined, used: Set<number>): Promise<() => Promise<void>> {
    const c = this.cluster;
    if (kind === 'disk-full') {
      const id = this.target(leader, used);
      used.add(id);
      const r = this.record('disk-full', `node ${id}`, id === leader);
      await c.fillDisk(id);
      // Watch for the node to notice (its next write that needs room stalls) until the fault is healed.
      const filledAt = performance.now();
      let healed = false;
      const watch = (async () => {
        while (!healed) {
          if (await c.reportsDiskFull(id)) {
            r.stalledAfterMs = Math.round(performance.now() - filledAt);
            this.opts.log?.(`node ${id} reports its disk full (${r.stalledAfterMs} ms after it filled)`);
            return;
          }
          await new Promise((res) => setTimeout(res, 100));
        }
      })();
      return async () => {
        healed = true;
        await watch;
        await c.freeDisk(id);
        this.close(r);
      };
    }
    if (kind === 'kill' || kind === 'pause') {
      const id = this.target(leader, used);
      used.add(id);
      if (kind === 'kill') {
        const r = this.record('kill', `node ${id}`, id === leader);
        await c.kill(id, 'SIGKILL');
        return async () => {
          await c.startNode(id);
          this.close(r);
        };
      }
      const r = this.record('pause', `node ${id}`, id === leader);
      c.pause(id);
      return async () => {
        c.resume(id);
        this.close(r);
      };
    }
    const mode = this.opts.rng() < 0.5 ? 'refuse' : 'blackhole';
    const n = c.ids.length;
    // Isolate one node (often the leader) or split off a random minority.
    let minority: number[];
    if (n <= 3 || this.opts.rng() < 0.6) minority = [this.target(leader, new Set())];
    else {
      const shuffled = [...c.ids].sort(() => this.opts.rng() - 0.5);
      minority = shuffled.slice(0, Math.floor((n - 1) / 2));
    }
    const majority = c.ids.filter((id) => !minority.includes(id));
    const r = this.record(
      'partition',
      `${mode} {${minority.join(',')}} | {${majority.join(',')}}`,
      leader !== undefined && minority.includes(leader),
    );
    c.partition(minority, majority, mode);
    return async () => {
      c.healLinks();
      this.close(r);
    };
  }
}
