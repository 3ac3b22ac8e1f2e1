/**
 * A cluster of real node processes on 127.0.0.1 whose peer links all go through LinkProxy, so a fault
 * injector can crash (SIGKILL), pause (SIGSTOP / SIGCONT) and restart nodes and cut any directed link.
 *
 * Node i's config names, for every other node j, the proxy of link i->j as j's address: both the Raft
 * transport port and the HTTP port used for forwarding to the leader. Node i itself listens on its real
 * ports, which clients use directly. Data directories live under `dir` and survive restarts; the nodes share
 * the cluster secret `<dir>/cluster.secret` (the proxies relay its handshakes and signed requests unchanged).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ConfigFile } from '../server/config.js';
import { LinkProxy, type LinkMode } from './proxy.js';
import { untilListening } from '../server/child.js';
import { freeNodePort } from '../net/ports.js';
import { ensureSecretFile } from '../net/peer-auth.js';

export interface VerifyClusterOptions {
  readonly nodes: number;
  readonly dir: string;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly requestTimeoutMs?: number;
  readonly snapshotThreshold?: number;
  /** What the nodes replicate (default the key-value store); the chat options as in LocalCluster. */
  readonly app?: 'kv' | 'chat';
  readonly chatLoginsPerMinute?: number;
  readonly chatPlantedBug?: 'reapply-after-restart';
  /**
   * Each node's data directory is a tmpfs of this many MiB (root only), so that `fillDisk` can fill it; the
   * nodes then keep no zero-filled room ahead of their log.
   */
  readonly smallDisksMiB?: number;
}

/** The file that takes the room left on a node's small disk. */
const FILLER = '.disk-filler';

export interface NodeStatus {
  readonly role: string;
  readonly state: string;
  readonly leader: number | null;
  readonly term: number;
  readonly commit: number;
  readonly applied: number;
}

const SERVER_MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'server', 'main.js');

interface Link {
  readonly raft: LinkProxy;
  readonly http: LinkProxy;
}

export class VerifyCluster {
  readonly ids: readonly number[];
  private readonly procs = new Map<number, ChildProcess>();
  private readonly paused = new Set<number>();
  private readonly configs = new Map<number, string>();
  private readonly httpPorts = new Map<number, number>();
  /** Directed links, keyed `${from}->${to}`. */
  private readonly links = new Map<string, Link>();
  /** Last lines of each node's stderr. */
  readonly stderr = new Map<number, string>();
  private closed = false;
  /** Small file systems mounted on the nodes' data directories. */
  private readonly mounts = new Map<number, string>();

  private constructor(n: number) {
    this.ids = Array.from({ length: n }, (_, i) => i + 1);
  }

  /** Picks ports, starts the proxies, writes the configs and starts every node. */
  static async start(opts: VerifyClusterOptions): Promise<VerifyCluster> {
    const c = new VerifyCluster(opts.nodes);
    try {
      await c.setUp(opts);
      await Promise.all(c.ids.map((id) => c.startNode(id)));
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  private async setUp(opts: VerifyClusterOptions): Promise<void> {
    const raftPorts = new Map<number, number>();
    for (const id of this.ids) {
      raftPorts.set(id, await freeNodePort());
      this.httpPorts.set(id, await freeNodePort());
    }
    mkdirSync(opts.dir, { recursive: true });
    const clusterSecretFile = ensureSecretFile(path.join(opts.dir, 'cluster.secret'));
    if (opts.smallDisksMiB !== undefined) {
      if (process.getuid?.() !== 0) {
        throw new Error('the disk-full fault needs root: each node keeps its data on a small tmpfs it mounts');
      }
      for (const id of this.ids) {
        const dir = path.join(opts.dir, `n${id}`);
        mkdirSync(dir, { recursive: true });
        execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${opts.smallDisksMiB}m`, 'tmpfs', dir]);
        this.mounts.set(id, dir);
      }
    }
    for (const from of this.ids) {
      const nodes: ConfigFile['nodes'] = [];
      for (const to of this.ids) {
        if (to === from) {
          nodes.push({ id: to, host: '127.0.0.1', raftPort: raftPorts.get(to)!, httpPort: this.httpPorts.get(to)! });
          continue;
        }
        const link: Link = {
          raft: await LinkProxy.start({ host: '127.0.0.1', port: raftPorts.get(to)! }),
          http: await LinkProxy.start({ host: '127.0.0.1', port: this.httpPorts.get(to)! }),
        };
        this.links.set(`${from}->${to}`, link);
        nodes.push({ id: to, host: '127.0.0.1', raftPort: link.raft.port, httpPort: link.http.port });
      }
      const file: ConfigFile = {
        id: from,
        nodes,
        dataDir: path.join(opts.dir, `n${from}`),
        tickMs: opts.tickMs,
        electionTicks: opts.electionTicks,
        requestTimeoutMs: opts.requestTimeoutMs,
        snapshotThreshold: opts.snapshotThreshold,
        logLevel: 'error',
        clusterSecretFile,
        app: opts.app,
        chatLoginsPerMinute: opts.chatLoginsPerMinute,
        chatPlantedBug: opts.chatPlantedBug,
        ...(opts.smallDisksMiB === undefined ? {} : { walPreallocateBytes: 0 }),
      };
      const cfgPath = path.join(opts.dir, `n${from}.json`);
      writeFileSync(cfgPath, JSON.stringify(file, null, 2));
      this.configs.set(from, cfgPath);
    }
  }

  url(id: number): string {
    const port = this.httpPorts.get(id);
    if (port === undefined) throw new Error(`no node ${id}`);
    return `http://127.0.0.1:${port}`;
  }

  get urls(): string[] {
    return this.ids.map((id) => this.url(id));
  }

  isRunning(id: number): boolean {
    return this.procs.has(id);
  }

  isPaused(id: number): boolean {
    return this.paused.has(id);
  }

  pid(id: number): number | undefined {
    return this.procs.get(id)?.pid;
  }

  /** PIDs of every node process still running. */
  pids(): number[] {
    return [...this.procs.values()].map((p) => p.pid).filter((p): p is number => p !== undefined);
  }

  /**
   * Spawns node `id` and resolves once it listens. A port still held by another process (EADDRINUSE, e.g.
   * another program's connection) is retried for a few seconds.
   */
  async startNode(id: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.spawnNode(id);
      } catch (err) {
        if (attempt >= 20 || this.closed || !String((err as Error).message).includes('EADDRINUSE')) throw err;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  }

  private spawnNode(id: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error('cluster closed'));
    if (this.procs.has(id)) return Promise.resolve();
    const cfg = this.configs.get(id);
    if (cfg === undefined) return Promise.reject(new Error(`no node ${id}`));
    const child = spawn(process.execPath, [SERVER_MAIN, '--config', cfg, '--exit-with-parent'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.procs.set(id, child);
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => this.stderr.set(id, ((this.stderr.get(id) ?? '') + d).slice(-4000)));
    child.on('exit', () => {
      if (this.procs.get(id) === child) {
        this.procs.delete(id);
        this.paused.delete(id);
      }
    });
    return untilListening(child, `node ${id}`, () => this.stderr.get(id) ?? '');
  }

  /** Sends `signal` (SIGKILL: a crash) to node `id` and waits for the process to end. */
  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.procs.get(id);
    if (child === undefined || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    process.kill(child.pid, signal);
    // A stopped process does not act on SIGTERM until continued.
    if (this.paused.has(id) && signal !== 'SIGKILL') process.kill(child.pid, 'SIGCONT');
    await exited;
  }

  pause(id: number): void {
    const pid = this.pid(id);
    if (pid === undefined || this.paused.has(id)) return;
    process.kill(pid, 'SIGSTOP');
    this.paused.add(id);
  }

  resume(id: number): void {
    const pid = this.pid(id);
    this.paused.delete(id);
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
  }

  /** Sets the mode of the directed link from -> to. */
  setLink(from: number, to: number, mode: LinkMode): void {
    const l = this.links.get(`${from}->${to}`);
    if (l === undefined) throw new Error(`no link ${from}->${to}`);
    l.raft.setMode(mode);
    l.http.setMode(mode);
  }

  linkMode(from: number, to: number): LinkMode | undefined {
    return this.links.get(`${from}->${to}`)?.raft.mode;
  }

  /** Cuts every link between the two groups, in both directions. */
  partition(a: readonly number[], b: readonly number[], mode: Exclude<LinkMode, 'pass'>): void {
    for (const x of a) {
      for (const y of b) {
        this.setLink(x, y, mode);
        this.setLink(y, x, mode);
      }
    }
  }

  /** Every link back to pass. */
  healLinks(): void {
    for (const l of this.links.values()) {
      l.raft.setMode('pass');
      l.http.setMode('pass');
    }
  }

  /** Heals links, continues paused nodes and restarts the stopped ones. */
  async healAll(): Promise<void> {
    this.healLinks();
    for (const id of [...this.paused]) this.resume(id);
    await Promise.all(this.ids.filter((id) => !this.isRunning(id)).map((id) => this.startNode(id)));
  }

  async status(id: number, timeoutMs = 500): Promise<NodeStatus | undefined> {
    if (!this.isRunning(id) || this.paused.has(id)) return undefined;
    try {
      const res = await fetch(this.url(id) + '/status', { signal: AbortSignal.timeout(timeoutMs) });
      return (await res.json()) as NodeStatus;
    } catch {
      return undefined;
    }
  }

  /** Whether node `id` says (on /health) that its disk is full and its log writes wait for room. */
  async reportsDiskFull(id: number, timeoutMs = 500): Promise<boolean> {
    if (!this.isRunning(id) || this.paused.has(id)) return false;
    try {
      const res = await fetch(this.url(id) + '/health', { signal: AbortSignal.timeout(timeoutMs) });
      return ((await res.json()) as { disk_full?: boolean }).disk_full === true;
    } catch {
      return false;
    }
  }

  /** The node that reports itself a serving leader, if any (one round of /status). */
  async leader(exclude: readonly number[] = []): Promise<number | undefined> {
    const found = await Promise.all(
      this.ids.filter((id) => !exclude.includes(id)).map(async (id) => ({ id, s: await this.status(id) })),
    );
    return found.find((f) => f.s?.role === 'leader' && f.s.state === 'serving')?.id;
  }

  async waitLeader(timeoutMs = 15_000, exclude: readonly number[] = []): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const l = await this.leader(exclude);
      if (l !== undefined) return l;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no leader within ${timeoutMs} ms`);
  }

  /** Fills node `id`'s small disk: a filler file takes every byte left (see `smallDisksMiB`). */
  async fillDisk(id: number): Promise<void> {
    const dir = this.mounts.get(id);
    if (dir === undefined) throw new Error(`node ${id} has no small disk to fill (smallDisksMiB)`);
    const f = await open(path.join(dir, FILLER), 'a');
    try {
      for (const size of [1 << 20, 1 << 16, 4096, 512]) {
        const chunk = Buffer.alloc(size, 0x5a);
        for (;;) {
          try {
            await f.write(chunk);
          } catch (e) {
            if ((e as { code?: string }).code === 'ENOSPC') break;
            throw e;
          }
        }
      }
    } finally {
      await f.close();
    }
  }

  /** Deletes the filler: node `id`'s disk has room again. */
  async freeDisk(id: number): Promise<void> {
    const dir = this.mounts.get(id);
    if (dir !== undefined) await rm(path.join(dir, FILLER), { force: true });
  }

  /** Kills every node process (by PID), closes the proxies and unmounts the small disks. Safe to call again. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.procs.keys()].map((id) => this.kill(id, 'SIGKILL')));
    await Promise.all([...this.links.values()].flatMap((l) => [l.raft.close(), l.http.close()]));
    this.links.clear();
    for (const [id, dir] of this.mounts) {
      try {
        execFileSync('umount', [dir]);
      } catch {
        execFileSync('umount', ['-l', dir]);
      }
      this.mounts.delete(id);
    }
  }

  /** Synchronous last resort (process 'exit' handlers): SIGKILL every child by PID. */
  killAllSync(): void {
    for (const pid of this.pids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}
