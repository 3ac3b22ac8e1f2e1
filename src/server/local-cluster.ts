/**
 * A local cluster of real node processes on 127.0.0.1 (tests and benchmarks): picks free ports (outside the
 * ephemeral range), creates the cluster secret `<dir>/cluster.secret` unless given one, writes one config
 * file per node, spawns `node dist/src/server/main.js --config ...` and kills children by PID.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LogLevel } from '../cli/config.js';
import type { ConfigFile } from './config.js';
import { untilListening } from './child.js';
import { freeNodePort } from '../net/ports.js';
import { ensureSecretFile } from '../net/peer-auth.js';
import { ensureClusterCerts, type ClusterTlsFiles } from '../net/certs.js';
import { tlsAgent } from '../net/tls-config.js';
import { readFileSync } from 'node:fs';
import { fetch as undiciFetch, type Agent } from 'undici';
import { AuthAdmin, enableAuthWithRoot } from '../client/auth.js';
import { Client } from '../client/client.js';

export interface LocalClusterOptions {
  readonly nodes: number;
  /** Each node gets `<dir>/n<id>` for data and `<dir>/n<id>.json` for its config. */
  readonly dir: string;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly requestTimeoutMs?: number;
  readonly snapshotThreshold?: number;
  readonly snapshotTrailing?: number;
  readonly forward?: boolean;
  readonly storage?: 'disk' | 'memory';
  readonly logLevel?: LogLevel;
  /** Extra arguments for the node processes' `node` (e.g. `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
  /** What the nodes replicate (default the key-value store). */
  readonly app?: 'kv' | 'chat';
  readonly chatLoginsPerMinute?: number;
  readonly chatSessionTtlMs?: number;
  readonly chatPlantedBug?: 'reapply-after-restart';
  /** Key-value app: changes kept for `GET /watch`. */
  readonly watchHistory?: number;
  /** The cluster secret every node gets (default: `<dir>/cluster.secret`, created if absent). */
  readonly clusterSecretFile?: string;
  /**
   * TLS: development certificates in `<dir>/tls` (a CA and one certificate per node); the nodes serve HTTPS,
   * verify each other against the CA and require each other's certificates on the peer transport.
   */
  readonly tls?: boolean;
  /** Key-value clusters: once up, create a root user with a random password (`rootPassword`) and enable auth. */
  readonly auth?: boolean;
}

const MAIN = path.join(path.dirname(fileURLToPath(import.meta.url)), 'main.js');

export class LocalCluster {
  readonly urls = new Map<number, string>();
  private readonly procs = new Map<number, ChildProcess>();
  private readonly configs = new Map<number, string>();
  /** Last lines of each node's stderr, for diagnosing failures. */
  readonly stderr = new Map<number, string>();
  /** Last lines of each node's stdout (its log). */
  readonly stdout = new Map<number, string>();
  /** The root user's password, with the `auth` option. */
  rootPassword: string | undefined;
  /** Each node's peer transport port. */
  readonly raftPorts = new Map<number, number>();
  /** The TLS files, with `tls`. */
  tlsFiles: ClusterTlsFiles | undefined;
  private agent: Agent | undefined;

  private constructor(
    readonly ids: readonly number[],
    private readonly nodeArgs: readonly string[],
    /** The cluster secret file the nodes share (tests sign requests with it). */
    readonly secretFile: string,
  ) {}

  static async start(opts: LocalClusterOptions): Promise<LocalCluster> {
    const ids = Array.from({ length: opts.nodes }, (_, i) => i + 1);
    const nodes: ConfigFile['nodes'] = [];
    for (const id of ids)
      nodes.push({ id, host: '127.0.0.1', raftPort: await freeNodePort(), httpPort: await freeNodePort() });
    mkdirSync(opts.dir, { recursive: true });
    const secretFile = ensureSecretFile(opts.clusterSecretFile ?? path.join(opts.dir, 'cluster.secret'));
    const c = new LocalCluster(ids, opts.nodeArgs ?? [], secretFile);
    if (opts.tls === true) {
      c.tlsFiles = await ensureClusterCerts(path.join(opts.dir, 'tls'), ids);
      c.agent = tlsAgent({ ca: readFileSync(c.tlsFiles.ca) });
    }
    const scheme = c.tlsFiles === undefined ? 'http' : 'https';
    for (const n of nodes) {
      const nodeTls = c.tlsFiles?.nodes.get(n.id);
      const file: ConfigFile = {
        id: n.id,
        nodes,
        dataDir: path.join(opts.dir, `n${n.id}`),
        tickMs: opts.tickMs,
        electionTicks: opts.electionTicks,
        requestTimeoutMs: opts.requestTimeoutMs,
        snapshotThreshold: opts.snapshotThreshold,
        snapshotTrailing: opts.snapshotTrailing,
        forward: opts.forward,
        storage: opts.storage,
        logLevel: opts.logLevel,
        app: opts.app,
        chatLoginsPerMinute: opts.chatLoginsPerMinute,
        chatSessionTtlMs: opts.chatSessionTtlMs,
        chatPlantedBug: opts.chatPlantedBug,
        watchHistory: opts.watchHistory,
        clusterSecretFile: secretFile,
        ...(nodeTls === undefined ? {} : { tls: { ...nodeTls, ca: c.tlsFiles?.ca } }),
      };
      const cfgPath = path.join(opts.dir, `n${n.id}.json`);
      writeFileSync(cfgPath, JSON.stringify(file, null, 2));
      c.configs.set(n.id, cfgPath);
      c.urls.set(n.id, `${scheme}://127.0.0.1:${n.httpPort}`);
      c.raftPorts.set(n.id, n.raftPort);
    }
    try {
      await Promise.all(ids.map((id) => c.startNode(id)));
    } catch (err) {
      await c.stopAll();
      throw err;
    }
    if (opts.auth === true) {
      c.rootPassword = randomBytes(18).toString('base64url');
      const ca = c.tlsFiles === undefined ? {} : { ca: readFileSync(c.tlsFiles.ca) };
      const client = new Client({ endpoints: [...c.urls.values()], ...ca });
      await enableAuthWithRoot(new AuthAdmin(client), c.rootPassword);
    }
    return c;
  }

  /** fetch, trusting the cluster's CA when it has TLS. */
  fetch(url: string, init: RequestInit = {}): Promise<Response> {
    if (this.agent === undefined) return fetch(url, init);
    return undiciFetch(url, {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: this.agent,
    }) as unknown as Promise<Response>;
  }

  /** The CA certificate (PEM) of a cluster with TLS. */
  get caPem(): string | undefined {
    return this.tlsFiles === undefined ? undefined : readFileSync(this.tlsFiles.ca, 'utf8');
  }

  url(id: number): string {
    const u = this.urls.get(id);
    if (u === undefined) throw new Error(`no node ${id}`);
    return u;
  }

  isRunning(id: number): boolean {
    return this.procs.has(id);
  }

  pid(id: number): number | undefined {
    return this.procs.get(id)?.pid;
  }

  /** Spawns node `id` and resolves once it listens. */
  startNode(id: number): Promise<void> {
    const cfg = this.configs.get(id);
    if (cfg === undefined) throw new Error(`no node ${id}`);
    const child = spawn(process.execPath, [...this.nodeArgs, MAIN, '--config', cfg, '--exit-with-parent'], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.procs.set(id, child);
    this.stderr.set(id, '');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => this.stderr.set(id, ((this.stderr.get(id) ?? '') + d).slice(-4000)));
    child.on('exit', () => {
      if (this.procs.get(id) === child) this.procs.delete(id);
    });
    this.stdout.set(id, '');
    child.stdout.on('data', (d: Buffer | string) =>
      this.stdout.set(id, ((this.stdout.get(id) ?? '') + d.toString()).slice(-64_000)),
    );
    return untilListening(child, `node ${id}`, () => this.stderr.get(id) ?? '');
  }

  /** Kills node `id` (SIGKILL by default: a crash) and waits for the process to end. */
  async kill(id: number, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.procs.get(id);
    if (child === undefined || child.pid === undefined) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    process.kill(child.pid, signal);
    await exited;
    this.procs.delete(id);
  }

  async stopAll(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    await Promise.all([...this.procs.keys()].map((id) => this.kill(id, signal)));
  }

  /** Polls `/status` until one running node reports itself leader and the others agree; returns its id. */
  async waitLeader(timeoutMs = 10_000, exclude: readonly number[] = []): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      for (const id of this.ids) {
        if (!this.isRunning(id) || exclude.includes(id)) continue;
        try {
          const res = await this.fetch(this.url(id) + '/status', { signal: AbortSignal.timeout(500) });
          const s = (await res.json()) as { role?: string; state?: string };
          if (s.role === 'leader' && s.state === 'serving') return id;
        } catch {
          // not up yet
        }
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('no leader elected in time');
  }
}
