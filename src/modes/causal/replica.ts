/**
 * One causal replica's behaviour apart from HTTP routing: startup (announce, copy the store), the peer loop
 * (health checks + anti-entropy), write broadcast, failure simulation and the client dependency check.
 */
import { PeerAuth } from '../../net/peer-auth.js';
import type { TlsFiles } from '../../net/tls-config.js';
import { openPeerTls, type PeerTls } from '../common/peer-tls.js';
import { leq, parseClock, type VectorClock } from './clock.js';
import { isSocketAddress, peerRequest, View, type PeerReply } from './peers.js';
import { CausalState, parseWrite, type Write } from './state.js';

export interface CausalTunables {
  /** Period of the peer loop: health check and anti-entropy with every known peer (default 1000 ms). */
  readonly syncIntervalMs?: number;
  /** Timeout of every internal request (default 500 ms). */
  readonly peerTimeoutMs?: number;
  /** Consecutive failed exchanges after which a peer leaves the view (default 3). */
  readonly failThreshold?: number;
  /** How long a client request may wait for missing dependencies before its 503 (default 500 ms). */
  readonly dependencyWaitMs?: number;
  /** Maximum key length in characters (default 50). */
  readonly maxKeyChars?: number;
  /** Maximum JSON-encoded value size in bytes (default 1 MiB). */
  readonly maxValueBytes?: number;
  /** Fastify logging (default off). */
  readonly logger?: boolean;
  /**
   * TEST ONLY: serve requests without checking their causal dependencies — a planted bug that the causal
   * checker must catch. Never set it in production.
   */
  readonly unsafeSkipDependencyCheck?: boolean;
  /** The cluster secret file every replica shares (peer credentials, see ../common/credentials.ts). */
  readonly clusterSecretFile?: string;
  /** Run without a secret although listening beyond loopback. */
  readonly insecure?: boolean;
  /** TLS: serve HTTPS and call peers over https (see ../common/peer-tls.ts). */
  readonly tls?: TlsFiles;
  /**
   * `IP:PORT` of a designated replica that handles every client write (PUT / DELETE /kvs): a replica
   * receiving one forwards it there, causal metadata included, and relays the answer. The designated
   * replica itself (and any replica when unset) handles writes locally. Reads stay local.
   */
  readonly forwardTo?: string;
}

export interface CausalReplicaOptions extends CausalTunables {
  /** `IP:PORT` this replica is known by and listens on. */
  readonly socketAddress: string;
  /** Addresses of all replicas (this one may or may not be listed). */
  readonly view: readonly string[];
}

export const DEPENDENCY_ERROR = 'Causal dependencies not satisfied; try again later';

export class CausalReplica {
  readonly self: string;
  readonly state: CausalState;
  readonly view: View;
  /** Set by POST /admin/fail: no client service, no replication traffic. */
  failed = false;
  /** False while starting or recovering (catching up before serving). */
  ready = false;
  /** Peers this replica is cut off from (POST /admin/partition). */
  readonly blocked = new Set<string>();
  readonly syncIntervalMs: number;
  readonly peerTimeoutMs: number;
  readonly failThreshold: number;
  readonly dependencyWaitMs: number;
  readonly skipDeps: boolean;
  /** The replica client writes are forwarded to, if any and not this one (see CausalTunables.forwardTo). */
  readonly forwardTo: string | undefined;
  /** Identifies this process's lifetime: peers notice a restart (and its lost memory) when it changes. */
  readonly incarnation = `${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
  readonly counters = { broadcasts: 0, broadcastFailures: 0, syncs: 0, syncFailures: 0, dependency503: 0 };
  /** Signs what this replica sends to its peers, verifies what they send (peer credentials). */
  readonly auth: PeerAuth;
  /** HTTPS serving and the agent of calls to peers (plain HTTP without TLS files). */
  readonly tls: PeerTls;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly waiters = new Set<() => void>();

  constructor(opts: CausalReplicaOptions, auth?: PeerAuth) {
    this.self = opts.socketAddress;
    this.auth = auth ?? PeerAuth.insecure(opts.socketAddress);
    this.tls = openPeerTls(opts.tls);
    this.state = new CausalState(this.self);
    this.view = new View(this.self, opts.view);
    this.syncIntervalMs = opts.syncIntervalMs ?? 1000;
    this.peerTimeoutMs = opts.peerTimeoutMs ?? 500;
    this.failThreshold = opts.failThreshold ?? 3;
    this.dependencyWaitMs = opts.dependencyWaitMs ?? 500;
    this.skipDeps = opts.unsafeSkipDependencyCheck ?? false;
    if (opts.forwardTo !== undefined && !isSocketAddress(opts.forwardTo)) {
      throw new Error(`invalid forward target: ${opts.forwardTo} (expected IP:PORT)`);
    }
    this.forwardTo = opts.forwardTo === undefined || opts.forwardTo === this.self ? undefined : opts.forwardTo;
  }

  /** Announces this replica to every known address and copies their stores; then serves. */
  async join(): Promise<void> {
    this.ready = false;
    const peers = this.view.knownPeers().filter((p) => !this.blocked.has(p));
    await Promise.all(peers.map((p) => this.send(p, 'PUT', '/view', { 'socket-address': this.self })));
    await Promise.all(peers.map((p) => this.exchange(p)));
    this.ready = true;
  }

  start(): void {
    if (this.timer !== undefined || this.closed) return;
    this.timer = setInterval(() => this.tick(), this.syncIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.closed = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    for (const w of this.waiters) w();
  }

  /** One round of the peer loop. */
  tick(): void {
    if (this.failed || this.closed) return;
    for (const p of this.view.knownPeers()) {
      const h = this.view.health(p);
      if (h === undefined || h.busy) continue;
      void this.exchange(p);
    }
  }

  /**
   * Anti-entropy with one peer, doubling as its health check: sends our clock, merges whatever the peer holds
   * that we lack. Success re-admits a peer that had left the view; repeated failure removes it and tells the rest.
   */
  async exchange(peer: string): Promise<boolean> {
    const h = this.view.health(peer);
    if (h === undefined) return false;
    h.busy = true;
    let ok = false;
    try {
      if (!this.blocked.has(peer) && !this.failed) {
        // Whether this request asks for the whole store is decided now: a restart noticed while it is in
        // flight sets needFull again, and the delta answered to this request must not clear it.
        const full = h.needFull;
        const reply = await this.send(peer, 'POST', '/internal/sync', {
          vc: full ? {} : this.state.clock(),
          inc: this.incarnation,
        });
        if (reply !== undefined && reply.status === 200 && !this.failed && !this.blocked.has(peer)) {
          ok = this.mergeReply(reply.body);
          if (ok && full) h.needFull = false;
          if (ok) this.noteIncarnation(peer, (reply.body as Record<string, unknown>).inc);
        }
      }
    } finally {
      h.busy = false;
    }
    this.counters.syncs++;
    if (ok) {
      h.failures = 0;
      h.lastOk = Date.now();
      this.view.add(peer);
    } else {
      this.counters.syncFailures++;
      h.failures++;
      if (h.failures >= this.failThreshold && !this.failed && this.view.remove(peer)) {
        for (const p of this.view.peers()) {
          if (this.blocked.has(p)) continue;
          void this.send(p, 'DELETE', '/view', { 'socket-address': peer });
        }
      }
    }
    return ok;
  }

  private mergeReply(body: unknown): boolean {
    if (body === null || typeof body !== 'object') return false;
    const o = body as Record<string, unknown>;
    const vc = parseClock(o.vc);
    if (typeof vc === 'string' || !Array.isArray(o.entries)) return false;
    const entries: Write[] = [];
    for (const raw of o.entries) {
      const w = parseWrite(raw);
      if (w === undefined) return false;
      entries.push(w);
    }
    if (this.state.mergeState(vc, entries) > 0 || entries.length > 0) this.wake();
    return true;
  }

  /** Applies a write accepted here and sends it to every reachable peer of the view (fire and forget). */
  broadcast(w: Write): void {
    for (const p of this.view.peers()) {
      if (this.blocked.has(p)) continue;
      this.counters.broadcasts++;
      void this.send(p, 'POST', '/internal/replicate', { write: w }).then((r) => {
        if (r === undefined || r.status !== 200) this.counters.broadcastFailures++;
      });
    }
  }

  /** One signed internal request to a peer; undefined on a network error or timeout. */
  private send(peer: string, method: 'POST' | 'PUT' | 'DELETE', path: string, body: unknown, timeoutMs?: number) {
    return peerRequest(
      this.self,
      peer,
      method,
      path,
      body,
      timeoutMs ?? this.peerTimeoutMs,
      (m, p, b) => this.auth.signHeaders(m, p, b),
      this.tls,
    );
  }

  /**
   * Sends a client write (`PUT` / `DELETE /kvs/<key>`, body with the client's causal metadata) to the
   * forward target, signed and naming this replica; undefined when it cannot be reached. The target may
   * wait for the write's dependencies, so the timeout covers that wait too.
   */
  forwardWrite(method: 'PUT' | 'DELETE', key: string, body: Record<string, unknown>): Promise<PeerReply | undefined> {
    if (this.forwardTo === undefined) throw new Error('no forward target');
    return this.send(
      this.forwardTo,
      method,
      `/kvs/${encodeURIComponent(key)}`,
      body,
      this.peerTimeoutMs + this.dependencyWaitMs,
    );
  }

  /** A write from a peer's broadcast. */
  receive(w: Write): void {
    if (this.state.receive(w) > 0) this.wake();
  }

  /**
   * Waits (bounded) until this replica holds the causal past `deps`; false if it still does not. Missing
   * writes trigger an immediate anti-entropy round instead of waiting for the next tick.
   */
  async awaitDependencies(deps: VectorClock): Promise<boolean> {
    if (this.skipDeps || this.state.satisfies(deps)) return true;
    this.tick();
    const deadline = Date.now() + this.dependencyWaitMs;
    while (!this.closed && !this.failed) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(t);
          this.waiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, Math.min(left, 50));
        this.waiters.add(done);
      });
      if (this.state.satisfies(deps)) return true;
    }
    if (this.state.satisfies(deps)) return true;
    this.counters.dependency503++;
    return false;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Clock and delta answered to a peer's anti-entropy request. `peerInc` is the asker's incarnation: a peer
   * that restarted lost its memory, so its sequence numbers may repeat ones some replica already counts; the
   * next exchange with every peer then fetches its whole store instead of a delta, and the next answer to
   * every peer sends ours whole.
   */
  syncReply(
    peer: string | undefined,
    peerVc: VectorClock,
    peerInc: unknown,
  ): { vc: VectorClock; entries: Write[]; inc: string } {
    if (peer !== undefined) this.noteIncarnation(peer, peerInc);
    const vc = this.state.clock();
    const h = peer === undefined ? undefined : this.view.health(peer);
    if (h?.sendFull === true) {
      h.sendFull = false;
      return { vc, entries: this.state.entriesSince({}), inc: this.incarnation };
    }
    return { vc, entries: leq(vc, peerVc) ? [] : this.state.entriesSince(peerVc), inc: this.incarnation };
  }

  private noteIncarnation(peer: string, inc: unknown): void {
    const h = this.view.health(peer);
    if (h === undefined || typeof inc !== 'string') return;
    if (h.incarnation !== undefined && h.incarnation !== inc) {
      // Any replica may hold writes of the old incarnation that deltas would now skip: fetch everything once,
      // and answer everyone's next exchange with everything once (a peer that never met the old process
      // cannot notice the restart itself, yet may lack a write only we hold).
      for (const p of this.view.knownPeers()) {
        const ph = this.view.health(p);
        if (ph !== undefined) {
          ph.needFull = true;
          ph.sendFull = true;
        }
      }
    }
    h.incarnation = inc;
  }
}
