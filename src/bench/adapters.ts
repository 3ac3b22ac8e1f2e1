/**
 * Mode adapters for the load generator: how a put and a get are spelled in each replication mode, where they
 * are sent, and what *order* (see staleness.ts) an acknowledgement or a read carries. HTTP goes through undici
 * pools with keep-alive, one per node.
 */
import { Pool } from 'undici';
import type { Order } from './staleness.js';

export const MODES = ['raft', 'quorum', 'eventual', 'causal'] as const;
export type BenchMode = (typeof MODES)[number];
export type RaftConsistency = 'linearizable' | 'stale' | 'lease';

export interface Target {
  readonly mode: BenchMode;
  /** Base URLs of every node; reads are spread over all of them. */
  readonly nodes: readonly string[];
  /** Where writes go: quorum needs the leader; raft uses it if given (followers forward otherwise). */
  readonly writeNodes?: readonly string[];
  /** Raft reads only. */
  readonly consistency?: RaftConsistency;
  /** Per-request time limit in ms (default 5000). */
  readonly timeoutMs?: number;
}

export interface OpResult {
  /** The request succeeded (2xx; a 404 read counts as a successful read of a missing key). */
  readonly ok: boolean;
  /** HTTP status, or 0 for a transport error. */
  readonly status: number;
  /** Order of the written or returned version (undefined: none, e.g. key not found). */
  readonly order?: Order;
  readonly error?: string;
}

/** One logical client: causal mode carries its metadata from request to request. */
export interface Session {
  meta: unknown;
}

/** Value written by the generator: `<seq>:` then padding up to the value size; the sequence is per key. */
export function makeValue(seq: number, size: number): string {
  const head = `${seq}:`;
  return head.length >= size ? head : head + 'x'.repeat(size - head.length);
}

export function seqOfValue(v: unknown): number | undefined {
  if (typeof v !== 'string') return undefined;
  const i = v.indexOf(':');
  const n = Number(i < 0 ? v : v.slice(0, i));
  return Number.isSafeInteger(n) ? n : undefined;
}

function hlcOrder(ts: unknown): Order | undefined {
  if (ts !== null && typeof ts === 'object') {
    const o = ts as { wall?: unknown; logical?: unknown };
    if (typeof o.wall === 'number' && typeof o.logical === 'number') return [o.wall, o.logical];
  }
  if (typeof ts === 'string') {
    const m = /^(\d+)\.(\d+)/.exec(ts);
    if (m !== null) return [Number(m[1]), Number(m[2])];
  }
  return undefined;
}

function num(x: unknown): Order | undefined {
  return typeof x === 'number' ? [x] : undefined;
}

interface Raw {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

export class ModeClient {
  private readonly pools = new Map<string, Pool>();
  private rr = 0;
  private wr = 0;

  constructor(
    readonly target: Target,
    connectionsPerNode: number,
  ) {
    if (target.nodes.length === 0) throw new Error('no nodes to send requests to');
    for (const url of new Set([...target.nodes, ...(target.writeNodes ?? [])])) {
      const t = target.timeoutMs ?? 5000;
      this.pools.set(
        url,
        new Pool(url, {
          connections: Math.max(1, connectionsPerNode),
          pipelining: 1,
          keepAliveTimeout: 30_000,
          headersTimeout: t,
          bodyTimeout: t,
          connectTimeout: t,
        }),
      );
    }
  }

  private readNode(): string {
    const n = this.target.nodes;
    return n[this.rr++ % n.length];
  }

  private writeNode(): string {
    const w = this.target.writeNodes;
    if (w !== undefined && w.length > 0) return w[this.wr++ % w.length];
    if (this.target.mode === 'quorum') return this.target.nodes[0];
    return this.readNode();
  }

  private async send(
    url: string,
    method: 'GET' | 'PUT' | 'POST',
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Raw> {
    const pool = this.pools.get(url);
    if (pool === undefined) throw new Error(`no pool for ${url}`);
    const res = await pool.request({
      method,
      path,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.body.text();
    let parsed: Record<string, unknown> = {};
    try {
      const j: unknown = JSON.parse(text);
      if (j !== null && typeof j === 'object') parsed = j as Record<string, unknown>;
    } catch {
      // non-JSON body: keep it empty
    }
    return { status: res.statusCode, body: parsed };
  }

  async put(session: Session, key: string, seq: number, valueSize: number): Promise<OpResult> {
    const value = makeValue(seq, valueSize);
    const k = encodeURIComponent(key);
    try {
      const url = this.writeNode();
      switch (this.target.mode) {
        case 'raft': {
          const r = await this.send(url, 'PUT', `/kvs/${k}`, { value });
          return this.result(r, num(r.body.revision));
        }
        case 'quorum': {
          const r = await this.send(url, 'POST', '/write', { key, value });
          return this.result(r, num(r.body.version));
        }
        case 'eventual': {
          const r = await this.send(url, 'PUT', `/kvs/${k}`, { value });
          return this.result(r, hlcOrder(r.body.timestamp));
        }
        case 'causal': {
          const r = await this.send(url, 'PUT', `/kvs/${k}`, { value, 'causal-metadata': session.meta ?? null });
          if (r.status < 300 && r.body['causal-metadata'] !== undefined) session.meta = r.body['causal-metadata'];
          return this.result(r, [seq]);
        }
      }
    } catch (e) {
      return { ok: false, status: 0, error: e instanceof Error ? e.message : String(e) };
    }
  }

  async get(session: Session, key: string): Promise<OpResult> {
    const k = encodeURIComponent(key);
    try {
      const url = this.readNode();
      switch (this.target.mode) {
        case 'raft': {
          const c = this.target.consistency ?? 'linearizable';
          const r = await this.send(url, 'GET', `/kvs/${k}?consistency=${c}`);
          return this.result(r, num(r.body.revision));
        }
        case 'quorum': {
          const r = await this.send(url, 'GET', `/read?key=${k}`);
          return this.result(r, num(r.body.version));
        }
        case 'eventual': {
          const r = await this.send(url, 'GET', `/kvs/${k}`);
          return this.result(r, hlcOrder(r.body.timestamp));
        }
        case 'causal': {
          const headers: Record<string, string> =
            session.meta === undefined || session.meta === null
              ? {}
              : { 'x-causal-metadata': JSON.stringify(session.meta) };
          const r = await this.send(url, 'GET', `/kvs/${k}`, undefined, headers);
          if (r.status < 300 || r.status === 404) {
            if (r.body['causal-metadata'] !== undefined) session.meta = r.body['causal-metadata'];
          }
          const s = seqOfValue(r.body.value);
          return this.result(r, s === undefined ? undefined : [s]);
        }
      }
    } catch (e) {
      return { ok: false, status: 0, error: e instanceof Error ? e.message : String(e) };
    }
  }

  private result(r: Raw, order: Order | undefined): OpResult {
    if (r.status === 404) return { ok: true, status: 404 };
    if (r.status >= 200 && r.status < 300) return { ok: true, status: r.status, order };
    const err = typeof r.body.error === 'string' ? r.body.error : `HTTP ${r.status}`;
    return { ok: false, status: r.status, error: err };
  }

  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((p) => p.close()));
  }
}
